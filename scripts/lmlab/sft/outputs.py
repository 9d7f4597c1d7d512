"""What an SFT adapter folder holds besides the adapter: train_log.tsv rows and the README.md card."""

import json

from lmlab.core.format import fmt_fixed
from lmlab.training.outputs import log_rows

# Columns of train_log.tsv; the rows also carry `elapsed_s` (wall clock), which goes to the
# adapter's timing file instead, so the folder is byte-identical across reruns.
LOG_COLUMNS = ["step", "loss", "eval_loss", "learning_rate", "tokens_seen"]
# train_log.tsv column of each log_history key.
_LOG_KEYS = {
    "loss": "loss",
    "eval_loss": "eval_loss",
    "learning_rate": "learning_rate",
    "num_input_tokens_seen": "tokens_seen",
    "elapsed_s": "elapsed_s",
}


def train_log_rows(log_history):
    """train_log.tsv rows: one per step with a training or validation loss (LOG_COLUMNS)."""
    rows = []
    for entry in log_rows(log_history):
        if "loss" not in entry and "eval_loss" not in entry:
            continue
        row = {"step": entry["step"]}
        row.update((column, entry[key]) for key, column in _LOG_KEYS.items() if key in entry)
        for key in ("loss", "eval_loss", "learning_rate", "elapsed_s"):
            if key in row:
                row[key] = float(row[key])
        rows.append(row)
    return rows


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
        f"- LoRA target modules: {r['lora_targets']} (architecture `{r['model_type']}`, "
        f"sft.target_modules: {r['sft_config']['target_modules']})",
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
        f"- final training loss (mean of the last logging window): {fmt_fixed(r['final_train_loss'], 4, missing='n/a')}",
        f"- validation loss of the kept adapter: {fmt_fixed(r['final_eval_loss'], 4, missing='n/a')}",
        f"- validation loss of the base model (step 0): {fmt_fixed(r['base_eval_loss'], 4, missing='n/a')}",
        f"- checkpoint selection: {r['selection']}",
        f"- kept: {r['kept']}",
        f"- resumed from a checkpoint: {r['resumed_from'] or 'no'}",
        "",
        "## Cost",
        "",
        f"Wall time, tokens/s, achieved FLOP/s over the GEMM probe and peak memory are timings: "
        f"they differ between reruns, so they are kept apart from this folder, in "
        f"`{r['timing_file']}` beside the stage's other timings (results/<run>/sft/timing/).",
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
        "(the SFTConfig and LoRA config as used), `train_log.tsv`, `metrics.json`.",
        "",
    ]
    return "\n".join(lines)
