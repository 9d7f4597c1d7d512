"""Running a TRL trainer: device settings, one resumable `trainer.train()`, and the arguments
and output folder the reward model, DPO, ORPO and RLOO share.

Every trainer resumes through `resume_point` (the work folder claimed for this run, then its
last complete checkpoint) and trains through `train_resumable` (SIGTERM: checkpoint, then
exit 128 + signal). The output folder is assembled beside the declared output and renamed
into place; under DDP (lmlab.core.launch) only the main process writes it.
"""

import logging
import os
import platform
import shutil
import time
from pathlib import Path

import torch
from accelerate import PartialState

from lmlab.core.cost import (
    TRAINING_FLOPS_FORMULA, count_forward_tokens, forward_parameters, gemm_probe, peak_memory_bytes,
    training_flops,
)
from lmlab.core.io import read_json, write_json
from lmlab.core.seeding import seed_everything
from lmlab.models.base import pick_device_dtype
from lmlab.training.checkpoints import claim_work_dir, last_checkpoint, run_key
from lmlab.training.outputs import (
    canonical_adapter_config,
    final_metrics,
    kv_lines,
    log_rows,
    publish,
    staging_dir,
    write_card,
    write_train_log,
)
from lmlab.training.signals import StopOnSignal

log = logging.getLogger(__name__)


def start_run(seed):
    """Seed everything (before a model is built: a new head or LoRA is initialised from the
    seed, not from whatever ran before in this process), then the device and dtype to train in."""
    seed_everything(seed)
    return pick_device_dtype()


def device_args(device, dtype, checkpointing=False):
    """TrainingArguments for precision and activation checkpointing picked from the device and
    dtype, never TRL's defaults (bf16=True and gradient_checkpointing=True made one CPU step
    15x slower). `checkpointing`: True, False or "auto" (on a GPU only)."""
    on_gpu = device == "cuda"
    checkpointing = on_gpu if str(checkpointing) == "auto" else bool(checkpointing)
    return {
        "use_cpu": not on_gpu,
        "bf16": on_gpu and dtype == torch.bfloat16,
        "fp16": on_gpu and dtype == torch.float16,
        # transformers 5.23 renamed gradient_checkpointing; set both so TRL's default (True) never leaks.
        "gradient_checkpointing": checkpointing,
        "activation_checkpointing": checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False} if checkpointing else None,
    }


def resume_point(work_dir, record):
    """The checkpoint to resume from in `work_dir` (None: start afresh), once the folder is
    claimed for the run that `record` (config, data, base) describes. Under DDP the main
    process claims it and the others wait."""
    state = PartialState()
    if state.is_main_process:
        claim_work_dir(work_dir, run_key(record))
    state.wait_for_everyone()
    resume = last_checkpoint(work_dir)
    if resume:
        log.info("resuming from %s", resume)
    return resume


def train_resumable(trainer, resume):
    """`trainer.train()` from `resume`; on SIGTERM/SIGINT a checkpoint, then TrainingInterrupted."""
    if resume and hasattr(trainer, "_total_train_tokens"):
        # TRL's DPO and reward trainers count trained tokens (logged as num_tokens) outside the
        # trainer state, so a resume would restart the count at 0: continue it from the checkpoint.
        logged = [e["num_tokens"] for e in read_json(Path(resume) / "trainer_state.json")["log_history"]
                  if "num_tokens" in e]
        if logged:
            trainer._total_train_tokens = int(logged[-1])
    stop = StopOnSignal()
    trainer.add_callback(stop)
    with stop.installed():
        output = trainer.train(resume_from_checkpoint=resume)
    if stop.received is not None:
        log.warning(
            "stopped by signal %d at step %d; checkpoint in %s",
            stop.received,
            trainer.state.global_step,
            trainer.args.output_dir,
        )
    stop.raise_if_stopped()
    return output


def check_finite(model):
    """Refuse to publish an adapter with NaN or infinite weights."""
    bad = [name for name, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(f"training produced non-finite weights in {len(bad)} tensors, e.g. {bad[0]}")


def hardware_line(device):
    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    return f"CPU {platform.machine()} x{os.cpu_count()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}"


def hardware_section(device, seed):
    return ("Hardware", [f"- {hardware_line(device)}", f"- seed {seed}"])


# ---------------------------------------------------------------- reward model, DPO, ORPO, RLOO


def common_args(config, work_dir, seed, device, dtype):
    """TrainingArguments shared by the reward model, DPO, ORPO and RLOO (no checkpointing)."""
    return {
        "output_dir": str(work_dir),
        "max_steps": config["steps"],
        "learning_rate": config["learning_rate"],
        "lr_scheduler_type": config.get("lr_scheduler_type", "constant"),
        "warmup_steps": 0,
        "gradient_accumulation_steps": config.get("grad_accum", 1),
        "logging_steps": config.get("logging_steps", 1),
        "save_strategy": "steps",
        "save_steps": config["save_steps"],
        "save_total_limit": 1,
        "seed": seed,
        "data_seed": seed,
        **device_args(device, dtype),
        # No fp16 autocast here (these trainers never had it): without bf16 they train in the weights' dtype.
        "fp16": False,
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
    }


def run_trainer(trainer, work_dir, record, device):
    """Resume point, GEMM probe, resumable training; returns the run's part of cost.json."""
    started = time.perf_counter()
    resume = resume_point(work_dir, record)
    # What this machine delivered just before training (matmul FLOP/s with the rule's threads):
    # on a shared machine it says how much of the wall time is other jobs' load.
    probe = gemm_probe(seconds=0.5, device=str(trainer.args.device))
    tokens, counting = count_forward_tokens(trainer.model)
    train_started, cpu_started = time.perf_counter(), time.process_time()
    try:
        train_resumable(trainer, resume)
    finally:
        counting.remove()
    train_s = time.perf_counter() - train_started
    n_forward, n_trainable = forward_parameters(trainer.model)
    achieved = training_flops(tokens, n_forward, n_trainable) / train_s if train_s > 0 else 0.0
    # Wall time suffers from other jobs on a shared machine; process CPU time much less so.
    return {
        "device": device,
        "hardware": hardware_line(device),
        "wall_s": time.perf_counter() - started,
        "resumed_from": os.path.basename(resume) if resume else None,
        "train_s": train_s,
        "train_cpu_s": time.process_time() - cpu_started,
        "probe_gflops": probe["flops_per_s"] / 1e9,
        "world_size": trainer.args.world_size,
        # Tokens of this session's forward passes (a resumed run counts from its checkpoint).
        "tokens_trained": tokens["trained"],
        "tokens_forward_only": tokens["forward_only"],
        "n_forward_params": int(n_forward),
        "n_trainable_params": int(n_trainable),
        "flops_formula": TRAINING_FLOPS_FORMULA,
        "achieved_flops_per_s": achieved,
        "achieved_over_probe": achieved / probe["flops_per_s"] if probe["flops_per_s"] > 0 else 0.0,
        "peak_memory_bytes": peak_memory_bytes(device),
    }


def finish(trainer, tokenizer, out_dir, work_dir, card_title, card_sections, training_config, log_keys, cost,
           timing_path):
    """Write the adapter folder (adapter, tokenizer, card, config, log), publish it, write the
    cost record to `timing_path` (wall clock: apart from the folder, which is byte-identical
    across reruns) and remove the work folder. Under DDP only the main process writes; the
    others wait for it and return the same cost record."""
    state = PartialState()
    model = trainer.model
    check_finite(model)
    metrics = final_metrics(log_rows(trainer.state.log_history), log_keys)
    cost = {**cost, "steps": trainer.state.global_step, "final_metrics": metrics}
    if not state.is_main_process:
        state.wait_for_everyone()
        return cost
    tmp = staging_dir(out_dir)
    if hasattr(model, "peft_config") and "default" in model.peft_config:
        model.save_pretrained(tmp, selected_adapters=["default"])  # not TRL's frozen "ref" copy
    else:
        model.save_pretrained(tmp)
    canonical_adapter_config(tmp)
    tokenizer.save_pretrained(tmp)
    write_train_log(tmp / "train_log.tsv", trainer.state.log_history)
    write_json(tmp / "training_config.json", training_config)
    sections = [
        *card_sections,
        ("Final metrics (mean of the last quarter of logged steps)", kv_lines(metrics)),
        ("Run", [f"- optimizer steps: {cost['steps']}; resumed from a checkpoint: {cost.get('resumed_from') or 'no'}"]),
        ("Cost", [f"Wall time, CPU time and the GEMM probe are timings: they differ between reruns, so they are "
                  f"kept apart from this folder, in `{Path(timing_path).name}` (the stage's timing/ folder)."]),
    ]
    write_card(tmp / "README.md", card_title, sections)
    publish(tmp, out_dir)
    write_json(timing_path, cost)
    shutil.rmtree(work_dir, ignore_errors=True)
    state.wait_for_everyone()
    return cost
