"""The wiring every step script shares: log file, threads, seed, and provenance on success.

    from lmlab.core.step import step
    with step(snakemake) as ctx:
        library_function(ctx.input.x, ctx.output.y, **ctx.params.kw)

On success the rule's `prov` output gets the provenance record; on failure the exception
is logged and re-raised, and Snakemake removes the declared outputs.
"""

import contextlib
import logging
import os
import sys
import time

from lmlab.core.errors import InputError
from lmlab.core.provenance import build_record, write_record
from lmlab.core.seeding import seed_everything


def _set_threads(threads):
    # Tokenizers' own thread pool and torch's intra-op pool both honour the rule's threads.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    # A step that has imported torch gets its pool resized; one that imports it later reads
    # OMP_NUM_THREADS at import. Steps without torch never pay for importing it.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def step_seed(smk):
    """The seed of a job: its {seed} wildcard (a training seed, config["seeds"]) where the rule
    has one, else the study's config["seed"]."""
    wildcards = dict(smk.wildcards.items())
    return int(wildcards["seed"]) if "seed" in wildcards else int(smk.config.get("seed", 0))


@contextlib.contextmanager
def step(smk):
    started = time.time()
    log_path = smk.log[0] if smk.log else None
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", handlers=handlers, force=True
    )
    seed = step_seed(smk)
    _set_threads(max(1, int(smk.threads)))
    seed_everything(seed)
    log = logging.getLogger(smk.rule)
    try:
        yield smk
    except InputError as err:
        # Bad input is the user's to fix: one line naming file, line and field, no traceback.
        for handler in handlers[1:]:
            handler.stream.write(f"InputError: {err}\n")
        print(f"InputError: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception:
        log.exception("step %s failed", smk.rule)
        raise
    prov = getattr(smk.output, "prov", None)
    outputs = [p for p in smk.output if p != prov]
    params = dict(smk.params.items())
    record = build_record(
        smk.rule, list(smk.input), outputs, params, smk.config, seed, started, smk.wildcards.items()
    )
    if prov:
        # The run's output root (<root>/provenance/<name>.json): lets a reviewer compare two
        # runs' records by paths relative to their roots (lmlab.paper.compare).
        record["results_root"] = os.path.dirname(os.path.dirname(prov))
        write_record(prov, record)
    log.info("done in %.1f s", time.time() - started)
