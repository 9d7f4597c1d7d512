"""DPO (TRL's DPOTrainer) from the SFT adapter, against the SFT model as reference.

`sft_weight` > 0 adds TRL's "sft" loss (NLL of the chosen answer) with that weight, as in
RPO: pure DPO only separates chosen from rejected and can lower both, which on the CPU
default drove the policy to answer with EOS alone. Start point, reference check and pair
data: `lmlab.alignment.policy`; checkpoints, resume and the output folder: `lmlab.training`.
"""

from pathlib import Path

from trl import DPOConfig, DPOTrainer

from lmlab.alignment.policy import (
    check_reference,
    load_policy,
    pairs_cost,
    pairs_dataset,
    pairs_section,
    require_reference,
)
from lmlab.models.base import load_tokenizer
from lmlab.training.checkpoints import content_hash
from lmlab.training.outputs import kv_lines
from lmlab.training.run import common_args, finish, hardware_section, run_trainer, start_run

LOG_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
            "logps/chosen", "logps/rejected")


def train_dpo(base_dir, sft_dir, pairs_path, out_dir, timing_path, work_root, train, beta, loss_type, max_length, seed,
              template="chat", pairs_summary=None, callbacks=(), sft_weight=0.0):
    """Rule alignment_dpo: one DPO adapter; returns its cost record (cost.json)."""
    device, dtype = start_run(seed)
    config = {"method": "dpo", "train": dict(train), "beta": beta, "loss_type": loss_type, "max_length": max_length,
              "sft_weight": sft_weight, "seed": seed, "sft": str(sft_dir), "pairs": str(pairs_path)}
    work_dir = Path(work_root) / "checkpoints"
    tokenizer = load_tokenizer(sft_dir, padding_side="right")
    dataset, rows, dropped = pairs_dataset(pairs_path, tokenizer, max_length)
    model = load_policy(base_dir, sft_dir, device, dtype)
    args = DPOConfig(**common_args(train, work_dir, seed, device, dtype), per_device_train_batch_size=train["batch_size"],
                     beta=beta, loss_type=[loss_type, "sft"] if sft_weight else [loss_type],
                     loss_weights=[1.0, sft_weight] if sft_weight else None,
                     max_length=max_length, precompute_ref_log_probs=False)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=list(callbacks))
    require_reference(trainer, "DPOTrainer")
    key = {"config": config, "inputs": {str(p): content_hash(p) for p in (base_dir, sft_dir, pairs_path)}}
    run = run_trainer(trainer, work_dir, key, device)
    drift = check_reference(trainer.model, sft_dir, "DPO")
    cost = {**run, **pairs_cost(train, trainer.args.world_size, len(dataset), dropped)}
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), the SFT LoRA "
            "loaded trainable and trained further (same rank and target modules as SFT).",
            "- reference: the SFT model. TRL 1.16's DPOTrainer copies the loaded SFT adapter into a frozen "
            "adapter named `ref` and computes reference log-probs with it active; we chose this over "
            "disabling the adapter (which would give the *base* model as reference) and over merging SFT "
            "into the base (the result would not load on BASE as one adapter).",
            f"- check: max |w_ref - w_sft| after training = {drift:.3g} (must be 0).",
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        pairs_section(pairs_path, rows, dropped, max_length, pairs_summary),
        ("Config", kv_lines(config)),
        hardware_section(device, seed),
    ]
    title = f"DPO adapter (beta {beta}, {loss_type}" + (
        f" + {sft_weight:g} x NLL of the chosen answer)" if sft_weight else ")"
    )
    return finish(trainer, tokenizer, out_dir, work_dir, title, sections, config, LOG_KEYS, cost, timing_path=timing_path)
