"""Instruction tuning (SFT) of a base model with LoRA, or QLoRA on CUDA, through TRL's SFTTrainer.

One adapter per prompt template. The training set is a weighted, seeded mix of validated SFT
files, rendered as prompt-completion pairs with `lmlab.models.templates`, so TRL's completion-only loss
trains on the response (and its final EOS: the model learns to stop) and never on the prompt.

Training runs in a work dir (checkpoints every `save_steps`); a run killed by SIGTERM saves a
checkpoint and exits 143, a run killed by SIGKILL loses at most `save_steps` steps, and either
one, started again with the same config, resumes from the last checkpoint. The finished adapter
(+ tokenizer, training_config.json, README.md card, train_log.tsv, cost.json, metrics.json) is
assembled in the work dir and moved into the output folder in one rename, so the output folder
exists only when it is complete.

CLI (the resume test uses it; Snakemake calls `run_sft`, which trains in-process or, with
more than one GPU, launches `train_sft` under DDP through `lmlab.core.launch`):

    python -m lmlab.sft.train --base DIR --train sft_train=PATH --validation PATH --template chat \
        --out DIR --work DIR [--config sft.json] [--manifest manifest.json] [--seed N]
"""

import argparse
import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_jsonl, read_tsv, sha256_file, write_json, write_tsv
from lmlab.models.templates import TEMPLATE_NAMES, render_completion, render_prompt

log = logging.getLogger(__name__)
FLOPS_FORMULA_TEXT = "6 x N_forward x training tokens"

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
LOG_COLUMNS = ["step", "loss", "eval_loss", "learning_rate", "tokens_seen", "elapsed_s"]
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what a shell reports for a process ended by SIGTERM


# ---------------------------------------------------------------- config ---------------------


def default_config():
    """The `sft` defaults from config/schema.yaml (the one place they are written down)."""
    import yaml

    with open(SCHEMA, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    props = schema["properties"]["sft"]["properties"]
    return {key: spec.get("default") for key, spec in props.items()}


def resolve_config(cfg=None):
    """Defaults + `cfg`, with the cross-key checks the schema cannot express."""
    merged = default_config()
    unknown = set(cfg or {}) - set(merged)
    if unknown:
        raise InputError(f"config: sft: unknown keys {sorted(unknown)}")
    merged.update(cfg or {})
    if merged["load_best_model_at_end"] and merged["save_steps"] % merged["eval_steps"]:
        raise InputError(
            f"config: sft.save_steps: {merged['save_steps']} must be a multiple of sft.eval_steps "
            f"({merged['eval_steps']}) when load_best_model_at_end is true"
        )
    if merged["max_steps"] <= 0 and merged["num_train_epochs"] <= 0:
        raise InputError("config: sft: set max_steps > 0 or num_train_epochs > 0")
    names = [m["dataset"] for m in merged["mix"]]
    if len(set(names)) != len(names):
        raise InputError(f"config: sft.mix: a dataset is listed twice: {names}")
    return merged


def resolve_qlora(setting, cuda_available):
    """qlora: auto -> on with CUDA; true without CUDA is a configuration error, not a fallback."""
    setting = str(setting).lower()
    if setting == "auto":
        return bool(cuda_available)
    if setting == "true":
        if not cuda_available:
            raise InputError(
                "config: sft.qlora: true needs a CUDA GPU (4-bit NF4 through bitsandbytes), and this "
                "machine has none; set sft.qlora to auto or false"
            )
        return True
    if setting == "false":
        return False
    raise InputError(f"config: sft.qlora: {setting!r} is not one of auto, true, false")


# ---------------------------------------------------------------- data -----------------------


def _largest_remainder(total, weights):
    """Integer counts summing to `total`, proportional to `weights` (ties: earlier entry first)."""
    weight_sum = float(sum(weights))
    quotas = [total * w / weight_sum for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def sample_mix(sources, mix, n_total=None, seed=0):
    """Draw a training set from several datasets by weight, deterministically from `seed`.

    `sources`: {name: rows}; `mix`: [{"dataset", "weight"}]. Each dataset gets its share of
    `n_total` (default: the sizes of the mixed datasets summed); within a dataset rows are drawn
    without replacement from a seeded permutation, and a share larger than the dataset takes
    whole extra permutations (upsampling). Returns (rows, record-per-dataset).
    """
    for entry in mix:
        if entry["dataset"] not in sources:
            raise InputError(f"config: sft.mix: dataset {entry['dataset']!r} has no rows loaded")
        if not entry.get("weight", 1.0) > 0:
            raise InputError(f"config: sft.mix: weight of {entry['dataset']!r} must be > 0")
    if n_total is None:
        n_total = sum(len(sources[e["dataset"]]) for e in mix)
    counts = _largest_remainder(n_total, [e.get("weight", 1.0) for e in mix])
    drawn, record = [], []
    for entry, count in zip(mix, counts):
        rows = sources[entry["dataset"]]
        if not rows and count:
            raise InputError(f"config: sft.mix: dataset {entry['dataset']!r} is empty")
        rng = random.Random(f"{seed}:mix:{entry['dataset']}")
        picked = []
        while len(picked) < count:
            order = list(range(len(rows)))
            rng.shuffle(order)
            picked.extend(order[: count - len(picked)])
        drawn.extend(rows[i] for i in picked)
        record.append(
            {
                "dataset": entry["dataset"],
                "weight": float(entry.get("weight", 1.0)),
                "rows_available": len(rows),
                "rows_drawn": count,
                "unique_rows_drawn": len(set(picked)),
            }
        )
    random.Random(f"{seed}:mix").shuffle(drawn)
    return drawn, record


def subsample(rows, n, seed, name):
    """`n` rows picked by a seeded draw, kept in file order (None or n >= len: all rows)."""
    if n is None or n >= len(rows):
        return list(rows)
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def prompt_completion(row, template, tokenizer):
    """One training pair. Trailing spaces of the prompt move to the completion: BPE merges
    "Answer: " + "42" into "Answer:" + " 42", so a prompt ending in a space is not a token
    prefix of prompt + completion; moving the space keeps the prompt/response token boundary
    where TRL puts it anyway, and every prompt token stays out of the loss."""
    prompt = render_prompt(row, template, tokenizer)
    completion = render_completion(row, template, tokenizer)
    stripped = prompt.rstrip(" \t")
    return {"prompt": stripped, "completion": prompt[len(stripped) :] + completion}


def build_pairs(rows, template, tokenizer, max_length):
    """Prompt-completion pairs; rows whose prompt + completion exceed `max_length` tokens are
    dropped (truncating them would cut off the response and its EOS). Returns (pairs, dropped ids)."""
    pairs, dropped = [], []
    for row in rows:
        pair = prompt_completion(row, template, tokenizer)
        n_tokens = len(tokenizer(pair["prompt"] + pair["completion"])["input_ids"])
        if max_length and n_tokens > max_length:
            dropped.append(row["id"])
            continue
        pairs.append(pair)
    return pairs, dropped


def rows_fitting_every_template(rows, tokenizer, max_length):
    """Rows whose prompt + completion fit `max_length` under every template, and the ids of the
    others: validation losses of different templates are then measured on the same rows."""
    too_long = set()
    for template in TEMPLATE_NAMES:
        if template != "chat" or tokenizer.chat_template:
            too_long.update(build_pairs(rows, template, tokenizer, max_length)[1])
    return [r for r in rows if r["id"] not in too_long], sorted(too_long)


def to_dataset(pairs):
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [p["prompt"] for p in pairs], "completion": [p["completion"] for p in pairs]})


# ---------------------------------------------------------------- model + trainer ------------


def lora_config(cfg):
    from peft import LoraConfig

    targets = cfg["target_modules"]
    return LoraConfig(
        r=cfg["r"],
        lora_alpha=cfg["alpha"],
        lora_dropout=cfg["dropout"],
        target_modules=targets if isinstance(targets, str) else list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_args(cfg, work_dir, device, dtype, seed, qlora=False):
    """SFTConfig with precision and checkpointing picked from the device, never TRL's defaults
    (bf16=True, gradient_checkpointing=True made one CPU step 15x slower)."""
    import torch
    from trl import SFTConfig

    on_gpu = device == "cuda"
    checkpointing = cfg["gradient_checkpointing"]
    checkpointing = on_gpu if str(checkpointing) == "auto" else bool(checkpointing)
    greater = cfg["greater_is_better"]
    if greater is None:
        greater = not cfg["metric_for_best_model"].endswith("loss")
    return SFTConfig(
        output_dir=str(work_dir),
        seed=seed,
        data_seed=seed,
        use_cpu=not on_gpu,
        bf16=on_gpu and dtype == torch.bfloat16,
        fp16=on_gpu and dtype == torch.float16,
        # transformers 5.23 renamed gradient_checkpointing; set both so TRL's default (True) never leaks.
        gradient_checkpointing=checkpointing,
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        learning_rate=cfg["learning_rate"],
        num_train_epochs=cfg["num_train_epochs"],
        max_steps=cfg["max_steps"],
        per_device_train_batch_size=cfg["per_device_train_batch_size"],
        per_device_eval_batch_size=cfg["per_device_eval_batch_size"],
        train_sampling_strategy=cfg["train_sampling_strategy"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        max_length=cfg["max_length"],
        packing=cfg["packing"],
        warmup_steps=cfg["warmup_steps"],
        weight_decay=cfg["weight_decay"],
        lr_scheduler_type=cfg["lr_scheduler_type"],
        max_grad_norm=cfg["max_grad_norm"],
        optim=(
            "paged_adamw_8bit"
            if qlora and cfg["optim"] == "auto"
            else ("adamw_torch" if cfg["optim"] == "auto" else cfg["optim"])
        ),
        completion_only_loss=True,
        logging_strategy="steps",
        logging_steps=cfg["logging_steps"],
        eval_strategy="steps",
        eval_steps=cfg["eval_steps"],
        eval_on_start=cfg["eval_on_start"],
        save_strategy="steps",
        save_steps=cfg["save_steps"],
        save_total_limit=cfg["save_total_limit"],
        load_best_model_at_end=cfg["load_best_model_at_end"],
        metric_for_best_model=cfg["metric_for_best_model"],
        greater_is_better=greater,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def load_training_model(base_dir, device, dtype, qlora, checkpointing):
    """Float model on its device, or (QLoRA) 4-bit NF4 with double quantisation and bf16/fp16
    compute, prepared for k-bit training. Each DDP process puts its copy on its own GPU."""
    from transformers import AutoModelForCausalLM

    if not qlora:
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise InputError(
            "config: sft.qlora: QLoRA needs the bitsandbytes package (envs/train.yaml); "
            "install it or set sft.qlora: false"
        ) from err
    from accelerate import PartialState
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base_dir,
        quantization_config=quant,
        dtype=dtype,
        device_map={"": PartialState().local_process_index},
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)


def _trainer_callbacks():
    from transformers import TrainerCallback

    from lmlab.core.launch import any_process

    class StopOnSignal(TrainerCallback):
        """SIGTERM (SLURM preemption, Snakemake shutdown): save a checkpoint at the end of the
        current step, then stop. Stopping only after on_save keeps the stop flag out of the
        saved trainer state."""

        def __init__(self):
            self.signum = None

        def handle(self, signum, frame):
            self.signum = signum
            log.warning("signal %d: saving a checkpoint at the end of this step, then exiting", signum)

        def on_step_end(self, args, state, control, **kwargs):
            # Under DDP all processes stop at the same step: a signal seen by one stops them all.
            if any_process(self.signum is not None) and self.signum is None:
                self.signum = signal.SIGTERM
            if self.signum is not None:
                control.should_save = True
            return control

        def on_save(self, args, state, control, **kwargs):
            if self.signum is not None:
                control.should_training_stop = True
            return control

    class StepClock(TrainerCallback):
        """Time inside optimizer steps (for tokens/s), and cumulative elapsed seconds written
        into each log entry, continued across a resume from the resumed trainer state."""

        def __init__(self):
            self.step_s = 0.0
            self.step_cpu_s = 0.0  # CPU time of all threads: robust to other jobs on the machine
            self.tokens_start = 0
            self._step_t0 = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()
            self.offset = max((e.get("elapsed_s", 0.0) for e in state.log_history), default=0.0)
            self.tokens_start = state.num_input_tokens_seen or 0
            self.step_start = state.global_step

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_t0 = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            if self._step_t0 is not None:
                self.step_s += time.perf_counter() - self._step_t0[0]
                self.step_cpu_s += time.process_time() - self._step_t0[1]
                self._step_t0 = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.log_history:
                state.log_history[-1]["elapsed_s"] = self.offset + time.perf_counter() - self.t0
            shown = {k: round(v, 5) for k, v in (logs or {}).items() if isinstance(v, float)}
            log.info("step %d %s", state.global_step, shown)

    return StopOnSignal(), StepClock()


def build_trainer(base_dir, train_pairs, eval_pairs, cfg, work_dir, seed, device=None, dtype=None, qlora=False):
    """The SFTTrainer exactly as training uses it (the label tests build theirs through here)."""
    from transformers import PrinterCallback
    from trl import SFTTrainer

    from lmlab.models.base import load_tokenizer, pick_device_dtype

    if device is None or dtype is None:
        device, dtype = pick_device_dtype()
    tokenizer = load_tokenizer(base_dir, padding_side="right")
    args = sft_args(cfg, work_dir, device, dtype, seed, qlora)
    model = load_training_model(base_dir, device, dtype, qlora, args.gradient_checkpointing)
    stop, clock = _trainer_callbacks()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(train_pairs),
        eval_dataset=to_dataset(eval_pairs) if eval_pairs else None,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=[stop, clock],
    )
    # StepClock logs one line per log entry; the default printer would repeat it on stdout.
    trainer.remove_callback(PrinterCallback)
    return trainer, stop, clock


# ---------------------------------------------------------------- outputs --------------------


def log_rows(log_history):
    """train_log.tsv rows: one per logged step, train and eval entries of a step merged."""
    by_step = {}
    for entry in log_history:
        if "loss" not in entry and "eval_loss" not in entry:
            continue  # the final train summary entry
        row = by_step.setdefault(entry["step"], {"step": entry["step"]})
        for key, column in (
            ("loss", "loss"),
            ("eval_loss", "eval_loss"),
            ("learning_rate", "learning_rate"),
            ("num_input_tokens_seen", "tokens_seen"),
            ("elapsed_s", "elapsed_s"),
        ):
            if key in entry:
                row[column] = entry[key]
    rows = [by_step[s] for s in sorted(by_step)]
    for row in rows:
        for key in ("loss", "eval_loss", "learning_rate", "elapsed_s"):
            if key in row:
                row[key] = float(row[key])
    return rows


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _checkpoint_step(path):
    return int(Path(path).name.split("-")[-1]) if path else None


def _fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def model_card(record):
    """README.md of the adapter: what a reader needs to trust and re-run it."""
    r = record
    lines = [
        "---",
        f"base_model: {r['base_model']['name']}",
        "library_name: peft",
        "pipeline_tag: text-generation",
        "tags: [lora, sft, trl, lmlab]",
        "---",
        "",
        f"# SFT LoRA adapter: template `{r['template']}`",
        "",
        "Instruction-tuned with TRL's `SFTTrainer` on prompt-completion pairs rendered with "
        f"`lmlab.models.templates` (template `{r['template']}`); the loss covers the completion only, "
        "including its final EOS token.",
        "",
        "## Base model",
        "",
        f"- folder: `{r['base_model']['path']}`",
        f"- source: `{r['base_model'].get('source')}`",
        f"- weights sha256: `{r['base_model'].get('weights_sha256')}`",
        f"- training precision: {r['precision']}; QLoRA: {r['qlora']}",
        "",
        "## Data",
        "",
        "| dataset | weight | rows available | rows drawn | unique rows | sha256 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in r["mix"]:
        lines.append(
            f"| {m['dataset']} | {m['weight']:g} | {m['rows_available']} | {m['rows_drawn']} | "
            f"{m['unique_rows_drawn']} | `{m.get('sha256')}` |"
        )
    v = r["validation"]
    lines += [
        "",
        f"Training pairs after the length filter: {r['n_train']} ({len(r['dropped_train'])} longer than "
        f"max_length={r['sft_config']['max_length']} tokens dropped). Validation: `{v['dataset']}` "
        f"(sha256 `{v.get('sha256')}`), {r['n_eval']} of {v['rows_available']} rows "
        f"(a seeded draw of {r['sft_config']['max_eval_examples']}, less {len(r['dropped_eval'])} longer than "
        f"max_length under some template: every template is validated on the same rows). "
        f"Sampling seed: {r['seed']}.",
        "",
        "## Result",
        "",
        f"- steps: {r['global_step']} (max_steps={r['sft_config']['max_steps']}, "
        f"batch {r['sft_config']['per_device_train_batch_size']} x accumulation "
        f"{r['sft_config']['gradient_accumulation_steps']} x {r['world_size']} process(es))",
        f"- final training loss (mean of the last logging window): {_fmt(r['final_train_loss'])}",
        f"- validation loss of the kept adapter: {_fmt(r['final_eval_loss'])}",
        f"- validation loss of the base model (step 0): {_fmt(r['base_eval_loss'])}",
        f"- checkpoint selection: {r['selection']}",
        f"- kept: {r['kept']}",
        f"- resumed from a checkpoint: {r['resumed_from'] or 'no'}",
        "",
        "## Cost",
        "",
        f"- wall time of the SFT step (data, model load, GEMM probe, training, evaluations, saving): "
        f"{r['cost']['wall_s']:.1f} s; training tokens: {r['cost']['tokens']}; tokens/s inside optimizer "
        f"steps: {r['cost']['tokens_per_s']:.1f}",
        f"- achieved FLOP/s ({r['cost']['flops_formula']}): {r['cost']['achieved_flops_per_s']:.3e}; "
        f"measured GEMM FLOP/s: {r['cost']['probe_flops_per_s']:.3e}; ratio "
        f"{r['cost']['achieved_over_probe']:.3f}",
        f"- CPU time inside optimizer steps (all threads): {r['cost']['train_step_cpu_s']:.1f} s; 1-minute load "
        f"average at the end: {_fmt(r['cost']['load_average'], 1)} (wall-clock rates are lower on a shared machine)",
        f"- peak memory: {r['cost']['peak_memory_bytes'] / 2**20:.0f} MiB ({r['cost']['peak_memory_kind']})",
        "",
        "## Hardware and software",
        "",
        f"- hardware: `{json.dumps(r['hardware'], sort_keys=True)}`",
        f"- packages: `{json.dumps(r['packages'], sort_keys=True)}`",
        "",
        "## Multi-GPU",
        "",
        "With `hpc.gpus > 1` the rule runs `train_sft` under "
        "`accelerate launch --multi_gpu --num_processes N -m lmlab.core.launch lmlab.sft.train:train_sft ...` "
        "(DDP, one process per GPU); only "
        "process 0 writes files, and the effective batch is per-device batch x accumulation x N.",
        "",
        "## Files",
        "",
        "`adapter_config.json` + `adapter_model.safetensors` (load with "
        "`PeftModel.from_pretrained(base, this_folder)`), the tokenizer, `training_config.json` "
        "(the SFTConfig and LoRA config as used), `train_log.tsv`, `cost.json`, `metrics.json`.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- training -------------------


def _run_key(cfg, template, seed, base_record, data_hashes):
    """What a checkpoint in the work dir must match to be resumed rather than discarded."""
    blob = json.dumps(
        {
            "cfg": cfg,
            "template": template,
            "seed": seed,
            "base": base_record.get("weights_sha256"),
            "data": data_hashes,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")


def checkpoint_complete(path):
    """A SIGKILL can land while a checkpoint is written: resume only from one whose files are
    all there and whose trainer state (written last) parses."""
    path = Path(path)
    if not all((path / name).is_file() for name in CHECKPOINT_FILES):
        return False
    try:
        return "global_step" in read_json(path / "trainer_state.json")
    except (ValueError, OSError):
        return False


def last_checkpoint(work_dir):
    """The newest complete checkpoint-N folder of the work dir, or None."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None
    candidates = []
    for path in work_dir.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if path.is_dir() and suffix.isdigit():
            candidates.append((int(suffix), path))
    for _, path in sorted(candidates, reverse=True):
        if checkpoint_complete(path):
            return str(path)
        log.warning("skipping incomplete checkpoint %s", path)
    return None


def train_sft(
    base_dir,
    train_paths,
    validation_path,
    out_dir,
    work_dir,
    template,
    cfg=None,
    seed=0,
    manifest_path=None,
):
    """Train one adapter; write `out_dir` complete or not at all. Returns metrics.json's dict.

    `train_paths`: {dataset name: validated JSONL path} for the names in cfg["mix"].
    Exits with SystemExit(143) after saving a checkpoint when SIGTERM arrives.
    """
    import torch
    from accelerate import PartialState

    from lmlab.core.cost import cost_record, forward_parameters, gemm_probe
    from lmlab.models.base import load_tokenizer, pick_device_dtype
    from lmlab.core.provenance import hardware, package_versions
    from lmlab.core.seeding import seed_everything

    started = time.perf_counter()
    cfg = resolve_config(cfg)
    seed_everything(seed)
    state = PartialState()
    device, dtype = pick_device_dtype()
    qlora = resolve_qlora(cfg["qlora"], device == "cuda")
    if qlora:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    base_dir, out_dir, work_dir = Path(base_dir), Path(out_dir), Path(work_dir)
    base_record = read_json(base_dir / "base_model.json") if (base_dir / "base_model.json").exists() else {}
    manifest = read_json(manifest_path) if manifest_path else {}

    # Data: everything is read and checked before the model is loaded.
    missing = [m["dataset"] for m in cfg["mix"] if m["dataset"] not in train_paths]
    if missing:
        raise InputError(f"config: sft.mix: no input file for {missing}")
    sources = {name: read_jsonl(path) for name, path in train_paths.items()}
    n_total = cfg["max_train_examples"]
    train_rows, mix_record = sample_mix(sources, cfg["mix"], n_total, seed)
    for m in mix_record:
        m["sha256"] = manifest.get(m["dataset"], {}).get("sha256") or sha256_file(train_paths[m["dataset"]])
    eval_all = read_jsonl(validation_path)
    eval_rows = subsample(eval_all, cfg["max_eval_examples"], seed, "validation")
    tokenizer = load_tokenizer(base_dir, padding_side="right")
    train_pairs, dropped_train = build_pairs(train_rows, template, tokenizer, cfg["max_length"])
    kept_eval, dropped_eval = rows_fitting_every_template(eval_rows, tokenizer, cfg["max_length"])
    eval_pairs, _ = build_pairs(kept_eval, template, tokenizer, None)
    # Evaluation batches of similar lengths: less padding, same rows every time.
    eval_pairs.sort(key=lambda p: len(tokenizer(p["prompt"] + p["completion"])["input_ids"]))
    if not train_pairs:
        raise InputError(f"config: sft.max_length: {cfg['max_length']} drops every training row")
    validation_name = Path(validation_path).stem
    validation_record = {
        "dataset": validation_name,
        "sha256": manifest.get(validation_name, {}).get("sha256") or sha256_file(validation_path),
        "rows_available": len(eval_all),
    }

    # Work dir: resume only checkpoints of this exact run (config, template, seed, base, data).
    data_hashes = {m["dataset"]: m["sha256"] for m in mix_record} | {"validation": validation_record["sha256"]}
    key = _run_key(cfg, template, seed, base_record, data_hashes)
    key_file = work_dir / "run_key.json"
    if state.is_main_process:
        if work_dir.exists() and (not key_file.exists() or read_json(key_file).get("key") != key):
            log.info("work dir %s holds another run: starting over", work_dir)
            shutil.rmtree(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        write_json(key_file, {"key": key})
    state.wait_for_everyone()
    resume = last_checkpoint(work_dir)
    if resume:
        log.info("resuming from %s", resume)

    # The probe runs in the training dtype on a GPU (tensor cores), float32 on CPU, and large enough
    # to saturate the device; same process and thread setting as the training.
    on_gpu = device == "cuda"
    probe = gemm_probe(
        cfg["gemm_probe_s"],
        n=4096 if on_gpu else 1024,
        device=f"cuda:{state.local_process_index}" if on_gpu else "cpu",
        dtype=dtype if on_gpu else torch.float32,
    )
    trainer, stop, clock = build_trainer(
        base_dir, train_pairs, eval_pairs, cfg, work_dir, seed, device=device, dtype=dtype, qlora=qlora
    )
    previous = signal.signal(signal.SIGTERM, stop.handle)
    try:
        train_output = trainer.train(resume_from_checkpoint=resume)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stop.signum is not None:
        log.warning(
            "stopped by signal %d at step %d; checkpoint in %s", stop.signum, trainer.state.global_step, work_dir
        )
        raise SystemExit(EXIT_PREEMPTED)

    history = list(trainer.state.log_history)
    best_ckpt = trainer.state.best_model_checkpoint
    if cfg["load_best_model_at_end"] and best_ckpt and cfg["metric_for_best_model"] == "eval_loss":
        # The kept adapter is the best checkpoint, whose validation loss is already measured.
        final_eval = {"eval_loss": trainer.state.best_metric}
    else:
        final_eval = trainer.evaluate() if eval_pairs else {}
    rows = log_rows(history)
    train_losses = [r["loss"] for r in rows if "loss" in r]
    eval_losses = [r for r in rows if "eval_loss" in r]
    state_obj = trainer.state
    metric = cfg["metric_for_best_model"]
    if cfg["load_best_model_at_end"] and best_ckpt:
        selection = (
            f"load_best_model_at_end on {metric} "
            f"({'higher' if trainer.args.greater_is_better else 'lower'} is better), evaluated every "
            f"{cfg['eval_steps']} steps on the validation split; checkpoints every {cfg['save_steps']} steps"
        )
        kept = f"checkpoint-{_checkpoint_step(best_ckpt)} ({metric} = {state_obj.best_metric:.6f})"
    else:
        selection = "the final step (load_best_model_at_end is off or no checkpoint was evaluated)"
        kept = f"final step {state_obj.global_step}"

    n_forward, n_trainable = forward_parameters(trainer.model)
    tokens = int(state_obj.num_input_tokens_seen or 0) - clock.tokens_start
    cost = cost_record(
        tokens=tokens,
        train_step_s=clock.step_s,
        wall_s=time.perf_counter() - started,
        n_forward=n_forward,
        n_trainable=n_trainable,
        probe=probe,
        device=device,
        extra={
            "steps_this_session": state_obj.global_step - clock.step_start,
            "tokens_total_run": int(state_obj.num_input_tokens_seen or 0),
            "resumed": bool(resume),
            "world_size": state.num_processes,
            "threads": torch.get_num_threads(),
            "train_step_cpu_s": clock.step_cpu_s,
            "cpu_s": time.process_time(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
    )
    metrics = {
        "template": template,
        "global_step": state_obj.global_step,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "train_loss_mean_this_session": train_output.training_loss,
        "final_eval_loss": final_eval.get("eval_loss"),
        "base_eval_loss": eval_losses[0]["eval_loss"] if eval_losses and eval_losses[0]["step"] == 0 else None,
        "best_metric": state_obj.best_metric,
        "best_checkpoint_step": _checkpoint_step(best_ckpt),
        "metric_for_best_model": metric,
        "n_train": len(train_pairs),
        "n_eval": len(eval_pairs),
        "trainable_params": n_trainable,
        "qlora": qlora,
    }
    if not state.is_main_process:
        state.wait_for_everyone()
        return metrics

    staging = work_dir / "final"
    if staging.exists():
        shutil.rmtree(staging)
    trainer.save_model(str(staging))
    tokenizer.save_pretrained(str(staging))
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; training_config.json says it all
    write_json(
        staging / "training_config.json",
        {
            "sft_config": _jsonable(trainer.args.to_dict()),
            "lora_config": _jsonable(trainer.model.peft_config["default"].to_dict()),
            "lmlab_sft": _jsonable(cfg),
            "qlora": qlora,
            "quantization": (
                {
                    "load_in_4bit": True,
                    "bnb_4bit_quant_type": "nf4",
                    "bnb_4bit_use_double_quant": True,
                    "bnb_4bit_compute_dtype": str(dtype).replace("torch.", ""),
                }
                if qlora
                else None
            ),
            "template": template,
            "seed": seed,
        },
    )
    write_tsv(staging / "train_log.tsv", rows, columns=LOG_COLUMNS, digits=6)
    write_json(staging / "cost.json", cost)
    write_json(staging / "metrics.json", metrics)
    record = {
        "template": template,
        "seed": seed,
        "base_model": {"path": str(base_dir), "name": base_dir.name, **base_record},
        "precision": str(dtype).replace("torch.", "") + (" compute, 4-bit NF4 weights" if qlora else ""),
        "qlora": qlora,
        "mix": mix_record,
        "validation": validation_record,
        "n_train": len(train_pairs),
        "n_eval": len(eval_pairs),
        "dropped_train": dropped_train,
        "dropped_eval": dropped_eval,
        "sft_config": cfg,
        "world_size": state.num_processes,
        "global_step": state_obj.global_step,
        "final_train_loss": metrics["final_train_loss"],
        "final_eval_loss": metrics["final_eval_loss"],
        "base_eval_loss": metrics["base_eval_loss"],
        "selection": selection,
        "kept": kept,
        "resumed_from": Path(resume).name if resume else None,
        "cost": cost,
        "hardware": hardware(),
        "packages": {
            k: v
            for k, v in package_versions().items()
            if k in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes")
        },
    }
    (staging / "README.md").write_text(model_card(record), encoding="utf-8")

    # The one step that makes the output visible: a rename of the finished folder.
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, out_dir)
    if not cfg["keep_work_dir"]:
        shutil.rmtree(work_dir, ignore_errors=True)
    state.wait_for_everyone()
    log.info("adapter written to %s (final eval_loss %s)", out_dir, metrics["final_eval_loss"])
    return metrics


def run_sft(num_processes=1, **kwargs):
    """Train in this process, or (num_processes > 1) under `accelerate launch` for DDP on that
    many GPUs through `lmlab.core.launch` and wait for it. Returns metrics.json's dict."""
    from lmlab.core import launch

    work_dir = Path(kwargs["work_dir"])
    # The launch files live beside the work dir: train_sft may delete the work dir itself.
    metrics = launch.run(
        train_sft, num_processes=num_processes, launch_dir=work_dir.parent / f"{work_dir.name}.launch", **kwargs
    )
    return metrics if metrics is not None else read_json(Path(kwargs["out_dir"]) / "metrics.json")


def cli_args(kwargs, config_file):
    args = ["--base", str(kwargs["base_dir"]), "--validation", str(kwargs["validation_path"])]
    for name, path in kwargs["train_paths"].items():
        args += ["--train", f"{name}={path}"]
    args += ["--template", kwargs["template"], "--out", str(kwargs["out_dir"]), "--work", str(kwargs["work_dir"])]
    args += ["--config", str(config_file), "--seed", str(kwargs.get("seed", 0))]
    if kwargs.get("manifest_path"):
        args += ["--manifest", str(kwargs["manifest_path"])]
    return args


# ---------------------------------------------------------------- summary (paper) ------------


def summarize(adapter_dirs, summary_path, cost_table, loss_table, figure_png, figure_pdf):
    """results/sft/: summary.json, tables/sft_cost.tsv, tables/sft_losses.tsv, figures/sft_curves.*

    Every number of the paper's SFT section is in summary.json; the tables hold the same numbers
    formatted for reading (cost) or the full curves (losses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    templates, cost_rows, loss_rows, settings = {}, [], [], None
    for template, folder in adapter_dirs.items():
        folder = Path(folder)
        metrics = read_json(folder / "metrics.json")
        cost = read_json(folder / "cost.json")
        training = read_json(folder / "training_config.json")
        settings = settings or training["lmlab_sft"]
        curve = read_tsv(folder / "train_log.tsv")
        t = {
            k: metrics[k]
            for k in (
                "global_step",
                "final_train_loss",
                "final_eval_loss",
                "base_eval_loss",
                "best_checkpoint_step",
                "metric_for_best_model",
                "n_train",
                "n_eval",
                "trainable_params",
                "qlora",
            )
        }
        t["eval_loss_drop"] = (
            t["base_eval_loss"] - t["final_eval_loss"]
            if t["base_eval_loss"] is not None and t["final_eval_loss"] is not None
            else None
        )
        t.update(
            tokens=cost["tokens"],
            tokens_per_s=cost["tokens_per_s"],
            wall_s=cost["wall_s"],
            train_step_s=cost["train_step_s"],
            peak_memory_mib=cost["peak_memory_bytes"] / 2**20,
            achieved_flops_per_s=cost["achieved_flops_per_s"],
            probe_flops_per_s=cost["probe_flops_per_s"],
            achieved_over_probe=cost["achieved_over_probe"],
            n_forward_params=cost["n_forward_params"],
            device=cost["device"],
            threads=cost.get("threads"),
            resumed=cost.get("resumed", False),
            train_step_cpu_s=cost.get("train_step_cpu_s", 0.0),
            load_average=cost.get("load_average"),
        )
        templates[template] = t
        cost_rows.append(
            {
                "template": template,
                "steps": str(t["global_step"]),
                "train tokens": str(t["tokens"]),
                "wall (s)": f"{t['wall_s']:.1f}",
                "tokens/s": f"{t['tokens_per_s']:.1f}",
                "achieved GFLOP/s": f"{t['achieved_flops_per_s'] / 1e9:.2f}",
                "GEMM probe GFLOP/s": f"{t['probe_flops_per_s'] / 1e9:.2f}",
                "achieved / probe": f"{t['achieved_over_probe']:.3f}",
                "step CPU (s)": f"{t['train_step_cpu_s']:.1f}",
                "load avg": _fmt(t["load_average"], 1),
                "peak memory (MiB)": f"{t['peak_memory_mib']:.0f}",
                "base val. loss": _fmt(t["base_eval_loss"]),
                "kept val. loss": _fmt(t["final_eval_loss"]),
            }
        )
        loss_rows.extend({"template": template, **row} for row in curve)
    with_eval = [name for name in templates if templates[name]["final_eval_loss"] is not None]
    summary = {
        "templates": templates,
        "template_order": list(adapter_dirs),
        "n_templates": len(templates),
        "total_wall_s": sum(t["wall_s"] for t in templates.values()),
        "best_template": min(with_eval, key=lambda name: templates[name]["final_eval_loss"]) if with_eval else None,
        "flops_formula": FLOPS_FORMULA_TEXT,
        "settings": (
            {
                k: settings[k]
                for k in (
                    "mix",
                    "max_train_examples",
                    "max_eval_examples",
                    "r",
                    "alpha",
                    "dropout",
                    "target_modules",
                    "learning_rate",
                    "max_steps",
                    "num_train_epochs",
                    "per_device_train_batch_size",
                    "gradient_accumulation_steps",
                    "max_length",
                    "warmup_steps",
                    "lr_scheduler_type",
                    "eval_steps",
                    "save_steps",
                    "metric_for_best_model",
                    "qlora",
                )
            }
            if settings
            else {}
        ),
    }
    write_json(summary_path, summary)
    write_tsv(cost_table, cost_rows, columns=list(cost_rows[0]) if cost_rows else ["template"])
    write_tsv(loss_table, loss_rows, columns=["template", *LOG_COLUMNS], digits=6)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for template in templates:
        rows = [r for r in loss_rows if r["template"] == template]
        train = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
        evals = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r["eval_loss"]]
        if train:
            axes[0].plot(*zip(*train), label=template)
        if evals:
            axes[1].plot(*zip(*evals), marker="o", label=template)
    from matplotlib.ticker import MaxNLocator

    for ax, title in zip(axes, ("training loss (completion tokens)", "validation loss (completion tokens)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title(title)
        ax.legend(title="template")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    for path in (figure_png, figure_pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata, so equal curves give equal bytes.
    fig.savefig(figure_png, dpi=150, metadata={"Software": None})
    fig.savefig(figure_pdf, metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(fig)
    return summary


# ---------------------------------------------------------------- CLI ------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lmlab.sft.train", description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--train", action="append", required=True, help="NAME=PATH, once per mix dataset")
    parser.add_argument("--validation", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--config", help="JSON file with sft settings (missing keys: schema defaults)")
    parser.add_argument("--manifest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_paths = dict(item.split("=", 1) for item in args.train)
    cfg = read_json(args.config) if args.config else {}
    train_sft(
        base_dir=args.base,
        train_paths=train_paths,
        validation_path=args.validation,
        out_dir=args.out,
        work_dir=args.work,
        template=args.template,
        cfg=cfg,
        seed=args.seed,
        manifest_path=args.manifest,
    )


if __name__ == "__main__":
    main()
