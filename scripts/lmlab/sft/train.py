"""Instruction tuning (SFT) of a base model with LoRA, or QLoRA on CUDA, through TRL's SFTTrainer.

One adapter per prompt template, trained on the pairs of `lmlab.sft.data`, so TRL's
completion-only loss trains on the response (and its final EOS: the model learns to stop)
and never on the prompt.

Training runs in a work dir (checkpoints every `save_steps`) through the trainer core
(`lmlab.training`): a run stopped by SIGTERM saves a checkpoint and exits 143, a run killed
by SIGKILL loses at most `save_steps` steps, and either one, started again with the same
config, resumes from the last complete checkpoint. The finished adapter (+ tokenizer,
training_config.json, README.md card, train_log.tsv, metrics.json; the cost goes to a timing file) is assembled
in the work dir and moved into the output folder in one rename, so the output folder exists
only when it is complete.

Snakemake calls `run_sft`, which trains in-process or, with more than one GPU, launches
`train_sft` under DDP through `lmlab.core.launch`.
"""

import logging
import os
import shutil
import time
from pathlib import Path

import torch
from accelerate import PartialState
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from lmlab.core import launch
from lmlab.core.cost import cost_record, forward_parameters, gemm_probe
from lmlab.core.io import read_json, write_json, write_tsv
from lmlab.core.provenance import hardware, package_versions
from lmlab.models.base import QUANTIZATION, load_quantized, load_tokenizer, lora_targets, pick_device_dtype
from lmlab.sft.config import resolve_config, resolve_qlora
from lmlab.sft.data import load_training_data, to_dataset
from lmlab.sft.outputs import LOG_COLUMNS, model_card, train_log_rows
from lmlab.training.checkpoints import checkpoint_step
from lmlab.training.outputs import canonical_adapter_config, jsonable, publish
from lmlab.training.run import device_args, resume_point, start_run, train_resumable

log = logging.getLogger(__name__)


def lora_config(cfg, model_type):
    """LoRA on `sft.target_modules`, or for "auto" the modules chosen for the architecture
    (lmlab.models.base.lora_targets)."""
    targets = lora_targets(model_type, cfg["target_modules"])
    return LoraConfig(
        r=cfg["r"],
        lora_alpha=cfg["alpha"],
        lora_dropout=cfg["dropout"],
        target_modules=targets if isinstance(targets, str) else list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_args(cfg, work_dir, device, dtype, seed, qlora=False):
    """SFTConfig with precision and checkpointing picked from the device (`device_args`)."""
    greater = cfg["greater_is_better"]
    if greater is None:
        greater = not cfg["metric_for_best_model"].endswith("loss")
    return SFTConfig(
        output_dir=str(work_dir),
        seed=seed,
        data_seed=seed,
        **device_args(device, dtype, cfg["gradient_checkpointing"]),
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
            "paged_adamw_8bit"  # CUDA only: paged optimizer states
            if qlora and cfg["optim"] == "auto" and device == "cuda"
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


def load_training_model(base_dir, dtype, qlora, checkpointing):
    """Float model, or (QLoRA) 4-bit NF4 with double quantisation computing in `dtype` (bf16 or
    fp16 on a GPU, float32 on the CPU), prepared for k-bit training. Each DDP process puts its
    copy on its own GPU."""
    if not qlora:
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    from bitsandbytes.nn import Linear4bit

    on_gpu = torch.cuda.is_available()
    model = load_quantized(base_dir, dtype, {"": PartialState().local_process_index if on_gpu else "cpu"})
    # bitsandbytes 0.50's CPU kernels repack a 4-bit weight for inference (bf16 scales) at the
    # first eval-mode pass without gradients, for good, and the repacked path passes no
    # gradient to the layer's input: after the step-0 evaluation every LoRA below the last
    # layer then learned from the LoRA branches alone (measured: the gradient norm of one batch
    # fell from 1.64 to 0.46 after one evaluation pass) and biased layers (GPT-NeoX) failed.
    # Training keeps every 4-bit layer on the differentiable path.
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)


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


def build_trainer(base_dir, train_pairs, eval_pairs, cfg, work_dir, seed, device=None, dtype=None, qlora=False,
                  callbacks=()):
    """(trainer, clock): the SFTTrainer exactly as training uses it (the label tests build theirs here)."""
    if device is None or dtype is None:
        device, dtype = pick_device_dtype()
    tokenizer = load_tokenizer(base_dir, padding_side="right")
    args = sft_args(cfg, work_dir, device, dtype, seed, qlora)
    model = load_training_model(base_dir, dtype, qlora, args.gradient_checkpointing)
    clock = StepClock()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(train_pairs),
        eval_dataset=to_dataset(eval_pairs) if eval_pairs else None,
        processing_class=tokenizer,
        peft_config=lora_config(cfg, model.config.model_type),
        callbacks=[clock, *callbacks],
    )
    # StepClock logs one line per log entry; the default printer would repeat it on stdout.
    trainer.remove_callback(PrinterCallback)
    return trainer, clock


def train_sft(
    base_dir,
    train_paths,
    validation_path,
    out_dir,
    work_dir,
    template,
    timing_path,
    cfg=None,
    seed=0,
    manifest_path=None,
    callbacks=(),
):
    """Train one adapter; write `out_dir` complete or not at all, and its wall-clock cost to
    `timing_path` (apart from the adapter, so the folder is byte-identical across reruns).
    Returns metrics.json's dict.

    `train_paths`: {dataset name: validated JSONL path} for the names in cfg["mix"].
    Raises TrainingInterrupted (exit code 143) after saving a checkpoint when SIGTERM arrives.
    """
    started = time.perf_counter()
    cfg = resolve_config(cfg)
    device, dtype = start_run(seed)
    state = PartialState()
    qlora = resolve_qlora(cfg["qlora"], device == "cuda")
    base_dir, out_dir, work_dir, timing_path = Path(base_dir), Path(out_dir), Path(work_dir), Path(timing_path)
    base_record = read_json(base_dir / "base_model.json") if (base_dir / "base_model.json").exists() else {}
    manifest = read_json(manifest_path) if manifest_path else {}
    tokenizer = load_tokenizer(base_dir, padding_side="right")
    data = load_training_data(cfg, train_paths, validation_path, template, tokenizer, seed, manifest)
    train_pairs, eval_pairs = data["train_pairs"], data["eval_pairs"]

    # Resume only checkpoints of this exact run (config, template, seed, base, data).
    data_hashes = {m["dataset"]: m["sha256"] for m in data["mix"]} | {"validation": data["validation"]["sha256"]}
    run = {"cfg": cfg, "template": template, "seed": seed, "base": base_record.get("weights_sha256"), "data": data_hashes}
    resume = resume_point(work_dir, run)

    # The probe runs in the training dtype on a GPU (tensor cores), float32 on CPU, and large enough
    # to saturate the device; same process and thread setting as the training.
    on_gpu = device == "cuda"
    probe = gemm_probe(
        cfg["gemm_probe_s"],
        n=4096 if on_gpu else 1024,
        device=f"cuda:{state.local_process_index}" if on_gpu else "cpu",
        dtype=dtype if on_gpu else torch.float32,
    )
    trainer, clock = build_trainer(
        base_dir, train_pairs, eval_pairs, cfg, work_dir, seed, device=device, dtype=dtype, qlora=qlora,
        callbacks=callbacks,
    )
    train_output = train_resumable(trainer, resume)

    history = list(trainer.state.log_history)
    best_ckpt = trainer.state.best_model_checkpoint
    if cfg["load_best_model_at_end"] and best_ckpt and cfg["metric_for_best_model"] == "eval_loss":
        # The kept adapter is the best checkpoint, whose validation loss is already measured.
        final_eval = {"eval_loss": trainer.state.best_metric}
    else:
        final_eval = trainer.evaluate() if eval_pairs else {}
    rows = train_log_rows(history)
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
        kept = f"checkpoint-{checkpoint_step(best_ckpt)} ({metric} = {state_obj.best_metric:.6f})"
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
            "elapsed_s_by_step": {str(r["step"]): r["elapsed_s"] for r in rows if "elapsed_s" in r},
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
        "best_checkpoint_step": checkpoint_step(best_ckpt),
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
    canonical_adapter_config(staging)
    tokenizer.save_pretrained(str(staging))
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; training_config.json says it all
    precision = str(dtype).replace("torch.", "")
    write_json(
        staging / "training_config.json",
        {
            "sft_config": jsonable(trainer.args.to_dict()),
            "lora_config": jsonable(trainer.model.peft_config["default"].to_dict()),
            "lmlab_sft": jsonable(cfg),
            "qlora": qlora,
            "quantization": {**QUANTIZATION, "bnb_4bit_compute_dtype": precision} if qlora else None,
            "template": template,
            "seed": seed,
        },
    )
    write_tsv(staging / "train_log.tsv", rows, columns=LOG_COLUMNS, digits=6)
    write_json(staging / "metrics.json", metrics)
    record = {
        "template": template,
        "seed": seed,
        "base_model": {"path": str(base_dir), "name": base_dir.name, **base_record},
        # TRL casts a quantized model's trainable adapter weights to bf16 (the QLoRA paper's recipe).
        "precision": precision + (" compute, 4-bit NF4 weights, adapter trained in bfloat16 (TRL)" if qlora else ""),
        "qlora": qlora,
        "mix": data["mix"],
        "validation": data["validation"],
        "n_train": len(train_pairs),
        "n_eval": len(eval_pairs),
        "dropped_train": data["dropped_train"],
        "dropped_eval": data["dropped_eval"],
        "sft_config": cfg,
        "model_type": read_json(base_dir / "config.json")["model_type"],
        "lora_targets": lora_targets(read_json(base_dir / "config.json")["model_type"], cfg["target_modules"]),
        "world_size": state.num_processes,
        "global_step": state_obj.global_step,
        "final_train_loss": metrics["final_train_loss"],
        "final_eval_loss": metrics["final_eval_loss"],
        "base_eval_loss": metrics["base_eval_loss"],
        "selection": selection,
        "kept": kept,
        "resumed_from": Path(resume).name if resume else None,
        "timing_file": timing_path.name,
        "hardware": hardware(),
        "packages": {
            k: v
            for k, v in package_versions().items()
            if k in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes")
        },
    }
    (staging / "README.md").write_text(model_card(record), encoding="utf-8")

    # The one step that makes the output visible: a rename of the finished folder.
    publish(staging, out_dir)
    write_json(timing_path, cost)
    if not cfg["keep_work_dir"]:
        shutil.rmtree(work_dir, ignore_errors=True)
    state.wait_for_everyone()
    log.info("adapter written to %s (final eval_loss %s)", out_dir, metrics["final_eval_loss"])
    return metrics


def run_sft(num_processes=1, **kwargs):
    """Train in this process, or (num_processes > 1) under `accelerate launch` for DDP on that
    many GPUs through `lmlab.core.launch` and wait for it. Returns metrics.json's dict."""
    work_dir = Path(kwargs["work_dir"])
    # The launch files live beside the work dir: train_sft may delete the work dir itself.
    metrics = launch.run(
        train_sft, num_processes=num_processes, launch_dir=work_dir.parent / f"{work_dir.name}.launch", **kwargs
    )
    return metrics if metrics is not None else read_json(Path(kwargs["out_dir"]) / "metrics.json")
