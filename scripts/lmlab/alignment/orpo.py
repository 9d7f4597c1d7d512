"""ORPO (`trl.experimental.orpo`) continuing the SFT adapter; ORPO has no reference model.

ORPO's loss is the chosen NLL plus beta times the log-odds-ratio term. It starts from the SFT
adapter, as DPO does (the ORPO paper trains from the base model; this run does not), on the
same pairs (`lmlab.alignment.policy`); checkpoints, resume and the output folder:
`lmlab.training`.
"""

import os
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # before trl.experimental is imported

from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402

from lmlab.alignment.policy import load_policy, pairs_cost, pairs_dataset, pairs_section  # noqa: E402
from lmlab.models.base import load_tokenizer  # noqa: E402
from lmlab.training.checkpoints import content_hash  # noqa: E402
from lmlab.training.outputs import kv_lines  # noqa: E402
from lmlab.training.run import common_args, finish, hardware_section, run_trainer, start_run  # noqa: E402

LOG_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
            "nll_loss", "log_odds_ratio", "log_odds_chosen")


def train_orpo(base_dir, sft_dir, pairs_path, out_dir, timing_path, work_root, train, beta, max_length, seed, template="chat",
               pairs_summary=None, callbacks=()):
    """Rule alignment_orpo: one ORPO adapter; returns its cost record (cost.json)."""
    device, dtype = start_run(seed)
    config = {"method": "orpo", "train": dict(train), "beta": beta, "max_length": max_length, "seed": seed,
              "sft": str(sft_dir), "pairs": str(pairs_path)}
    work_dir = Path(work_root) / "checkpoints"
    tokenizer = load_tokenizer(sft_dir, padding_side="right")
    dataset, rows, dropped = pairs_dataset(pairs_path, tokenizer, max_length)
    model = load_policy(base_dir, sft_dir, device, dtype)
    args = ORPOConfig(**common_args(train, work_dir, seed, device, dtype),
                      per_device_train_batch_size=train["batch_size"], beta=beta, max_length=max_length)
    trainer = ORPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          callbacks=list(callbacks))
    key = {"config": config, "inputs": {str(p): content_hash(p) for p in (base_dir, sft_dir, pairs_path)}}
    run = run_trainer(trainer, work_dir, key, device)
    cost = {**run, **pairs_cost(train, trainer.args.world_size, len(dataset), dropped)}
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), the SFT LoRA "
            "loaded trainable and trained further with ORPO (`trl.experimental.orpo`).",
            "- no reference model: ORPO's loss is the chosen NLL plus beta times the log-odds-ratio term. "
            "Because it starts from the SFT adapter, not from the base, it is compared with DPO from the "
            "same start (the ORPO paper trains from the base model; this run does not).",
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        pairs_section(pairs_path, rows, dropped, max_length, pairs_summary),
        ("Config", kv_lines(config)),
        hardware_section(device, seed),
    ]
    return finish(trainer, tokenizer, out_dir, work_dir, f"ORPO adapter (beta {beta})", sections, config, LOG_KEYS,
                  cost, timing_path=timing_path)
