"""One way to run a training function on several GPUs: `accelerate launch` (DDP) when asked
for more than one process, a plain call in this process otherwise.

    from lmlab.core import launch
    cost = launch.run(train_dpo, num_processes=launch.processes_for(gpus), launch_dir=WORK, **kwargs)

With `num_processes` > 1 (and not already inside a launched process), `run` writes the
keyword arguments to `<launch_dir>/<function>.kwargs.json` and runs

    python -m accelerate.commands.launch --multi_gpu --num_processes N --main_process_port P \
        -m lmlab.core.launch lmlab.module:function <launch_dir>/<function>.kwargs.json

which starts N copies of this module's entry point (one per GPU); each imports the function
(only from the `lmlab` package) and calls it with the same arguments. The functions write
their outputs themselves, on the main process only (TRL's `save_model` and lmlab's own
writes guarded by `PartialState().is_main_process`, as in `lmlab.sft.train.train_sft` and
`lmlab.training.run.finish`). The main process's return value comes back through
`<function>.result.json` when it is JSON-serialisable; otherwise `run` returns None on the
launched path, so step scripts must not depend on the return value.

Arguments cross a process boundary as JSON: strings, numbers, booleans, None, lists and
dicts; `os.PathLike` values are passed as strings and tuples as lists. Anything else (a
callback object, a model) is refused with a TypeError before anything starts.

A run stopped by a signal (SLURM preemption, Snakemake shutdown) saves a checkpoint in each
launched process and exits 128 + signal (`lmlab.training.signals.TrainingInterrupted`;
EXIT_PREEMPTED for SIGTERM); the launcher itself reports only "failed", so each process
records its exit code beside the kwargs file and `run` exits with that code (143 for SIGTERM),
as the single-process path does. A SIGTERM or SIGINT that reaches this process while it waits
is passed on to the launcher, which stops the processes it started (they checkpoint first).
"""

import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "lmlab"
SCRIPTS_DIR = Path(__file__).resolve().parents[2]  # scripts/: what PYTHONPATH needs for `lmlab`
LOG_FILE_ENV = "LMLAB_LAUNCH_LOG"  # the rule's log file, appended to by the main launched process
EXIT_PREEMPTED = 128 + signal.SIGTERM  # 143: a training process stopped by SIGTERM after its checkpoint


def processes_for(gpus):
    """Processes to launch for a rule granted `gpus` GPUs: one per GPU that is really visible,
    1 on a machine without CUDA (CPU runs train in the calling process)."""
    import torch  # lazy: see any_process

    if not torch.cuda.is_available():
        return 1
    return max(1, min(int(gpus or 1), torch.cuda.device_count()))


def in_launched_process():
    """True inside a process started by `accelerate launch` / torchrun."""
    return "LOCAL_RANK" in os.environ


def any_process(flag):
    """`flag` OR-ed over the processes of a DDP run (just `flag` in a single process). Every
    process must call it at the same point (it is a collective)."""
    # Lazy (here and below): torch is heavy, and the launching side of this module needs none of it.
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return flag
    on_gpu = "nccl" in str(dist.get_backend()) and torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def function_spec(func):
    """'lmlab.module:function' for a function defined at the top level of an lmlab module."""
    module, name = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not _allowed(module) or not name.isidentifier():
        raise ValueError(
            f"lmlab.core.launch: only top-level functions of the {PACKAGE} package can be launched, not {module}.{name}"
        )
    return f"{module}:{name}"


def _allowed(module):
    return isinstance(module, str) and (module == PACKAGE or module.startswith(PACKAGE + "."))


def _to_json(value, where):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"lmlab.core.launch: argument {where} has a non-string key {k!r}: JSON cannot carry it")
            out[k] = _to_json(v, f"{where}[{k!r}]")
        return out
    raise TypeError(
        f"lmlab.core.launch: argument {where} is a {type(value).__name__}, which cannot cross to the launched "
        "processes (arguments travel as JSON: paths, strings, numbers, lists, dicts; no callbacks or objects)"
    )


def encode_kwargs(kwargs):
    """The kwargs as JSON-ready values; TypeError naming the first argument that cannot cross."""
    return {name: _to_json(value, name) for name, value in kwargs.items()}


def free_port():
    """A TCP port free now, for the rendezvous of one launch (two DDP jobs on one node would
    otherwise both take accelerate's default 29500)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_files(launch_dir, func_spec):
    """(kwargs file, result file, exit-code file pattern) of one launched function."""
    stem = func_spec.rsplit(":", 1)[1]
    launch_dir = Path(launch_dir)
    return launch_dir / f"{stem}.kwargs.json", launch_dir / f"{stem}.result.json", f"{stem}.rank*.exit"


def command(num_processes, func_spec, kwargs_file, port=None):
    """The `accelerate launch` command line for `num_processes` DDP processes (one process,
    without --multi_gpu, is what accelerate accepts on a machine without GPUs)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *(["--multi_gpu"] if num_processes > 1 else []),
        "--num_processes",
        str(num_processes),
        "--main_process_port",
        str(port if port is not None else free_port()),
        "-m",
        "lmlab.core.launch",
        func_spec,
        str(kwargs_file),
    ]


def launch_env():
    """This environment with scripts/ on PYTHONPATH and the rule's log file named for the children."""
    paths = [str(SCRIPTS_DIR), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
    log_file = next(
        (h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)), None
    )
    if log_file:
        env[LOG_FILE_ENV] = log_file
    return env


def run(func, num_processes=1, launch_dir=None, **kwargs):
    """`func(**kwargs)` in this process when num_processes <= 1 or inside a launched process
    (returns its result); else under `accelerate launch` with num_processes DDP processes
    (returns the main process's result when it was JSON-serialisable, else None).

    `launch_dir` (needed for num_processes > 1): where the kwargs, result and exit-code files
    go; keep it apart from folders the function itself deletes (e.g. its work dir)."""
    if num_processes <= 1 or in_launched_process():
        return func(**kwargs)
    if launch_dir is None:
        raise ValueError("lmlab.core.launch.run: launch_dir is required for num_processes > 1")
    spec = function_spec(func)
    encoded = encode_kwargs(kwargs)
    kwargs_file, result_file, exit_pattern = launch_files(launch_dir, spec)
    kwargs_file.parent.mkdir(parents=True, exist_ok=True)
    for stale in [result_file, *kwargs_file.parent.glob(exit_pattern)]:
        stale.unlink(missing_ok=True)
    kwargs_file.write_text(json.dumps(encoded, indent=1, sort_keys=True), encoding="utf-8")
    cmd = command(num_processes, spec, kwargs_file)
    log.info("launching %d processes: %s", num_processes, " ".join(cmd))
    returncode, received = _run_forwarding_signals(cmd, launch_env())
    codes = [_read_exit(p) for p in sorted(kwargs_file.parent.glob(exit_pattern))]
    if returncode:
        preempted = [c for c in codes if c >= 128]
        if preempted:
            code = max(preempted)
        elif received is not None:
            code = 128 + received
        elif returncode < 0:  # the launcher itself ended by a signal
            code = 128 - returncode
        else:
            code = max([returncode, *codes])
        log.error("launched %s ended with exit code %d", spec, code)
        raise SystemExit(code)
    if result_file.exists():
        return json.loads(result_file.read_text(encoding="utf-8"))
    return None


def _read_exit(path):
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return 1


def _run_forwarding_signals(cmd, env):
    """Run cmd to the end; a SIGTERM/SIGINT received meanwhile goes on to it (once per signal)
    and is reported, so the launched processes can checkpoint before this process exits."""
    proc = subprocess.Popen(cmd, env=env)
    received = None

    def forward(signum, frame):
        nonlocal received
        if received != signum:
            received = signum
            log.warning("signal %d: passing it to the launched processes and waiting for them", signum)
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        returncode = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return returncode, received


# ---------------------------------------------------------------- launched entry point -------


def resolve(func_spec):
    """The function named 'lmlab.module:function'; ValueError for anything outside lmlab."""
    module, sep, name = func_spec.partition(":")
    if not sep or not _allowed(module) or not name.isidentifier():
        raise ValueError(f"lmlab.core.launch: {func_spec!r} is not a function of the {PACKAGE} package (lmlab.module:function)")
    func = getattr(importlib.import_module(module), name, None)
    if not callable(func):
        raise ValueError(f"lmlab.core.launch: {func_spec!r} is not a function")
    return func


def _setup_logging(rank):
    handlers = [logging.StreamHandler(sys.stderr)]
    log_file = os.environ.get(LOG_FILE_ENV)
    if log_file and rank == 0:
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s [rank {rank}] %(name)s %(message)s", handlers=handlers, force=True
    )


def main(argv=None):
    """python -m lmlab.core.launch lmlab.module:function KWARGS.json (one launched process)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m lmlab.core.launch lmlab.module:function KWARGS.json")
    func_spec, kwargs_path = argv
    func = resolve(func_spec)
    rank = int(os.environ.get("RANK", "0"))
    _setup_logging(rank)
    kwargs_path = Path(kwargs_path)
    kwargs = json.loads(kwargs_path.read_text(encoding="utf-8"))
    if in_launched_process():
        # Before any model is loaded: this process's GPU becomes the current CUDA device, so
        # `.to("cuda")` in the training code puts each process's copy on its own GPU.
        from accelerate import PartialState  # lazy: loads torch (see any_process)

        PartialState()
    _, result_file, exit_pattern = launch_files(kwargs_path.parent, func_spec)
    exit_file = kwargs_path.parent / exit_pattern.replace("*", str(rank))
    try:
        result = func(**kwargs)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
        if code:
            exit_file.write_text(f"{code}\n")
        raise
    except BaseException:
        exit_file.write_text("1\n")
        raise
    if rank == 0:
        try:
            text = json.dumps(result, sort_keys=True)
        except (TypeError, ValueError):
            log.warning("%s returned a %s, which is not JSON: the launcher returns None", func_spec, type(result).__name__)
        else:
            result_file.write_text(text, encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
