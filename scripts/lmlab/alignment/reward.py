"""Reward models: the learned one (TRL RewardTrainer, LoRA on a sequence-classification head
over the base) and its evaluation against the heuristic baseline on held-out pairs.

Training reads the same fitted inputs (`lmlab.models.reward.rm_input_ids`) as every user of
a reward model, pre-tokenised, so TRL keeps every pair; its own handling (drop the pair)
would remove most over-long rejections.

Pairwise accuracy on preferences_test is the share of pairs where the scorer gives the
chosen response the higher score; a tie counts one half (what a coin flip would get), and
the tie rate is reported beside it. Intervals are bootstrap intervals (`lmlab.core.stats`).
"""

import logging
import random
from pathlib import Path

from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForSequenceClassification
from trl import RewardConfig, RewardTrainer

from lmlab.alignment.pairs import render_pair_prompt
from lmlab.alignment.scoring import heuristic_score
from lmlab.core.io import read_jsonl, write_json, write_jsonl
from lmlab.core.stats import paired_mean_difference, proportion_ci
from lmlab.data.tasks import FAILURE_MODES
from lmlab.models.base import load_tokenizer, lora_targets
from lmlab.models.reward import load_reward_model, pairwise_outcome, reward_scores, rm_input_ids
from lmlab.training.checkpoints import content_hash
from lmlab.training.outputs import count_by, kv_lines
from lmlab.training.run import common_args, finish, hardware_section, run_trainer, start_run

log = logging.getLogger(__name__)

RM_LOG_KEYS = ("loss", "accuracy", "margin", "mean_reward")


def train_reward_model(base_dir, pairs_path, out_dir, timing_path, work_root, reward, max_length, seed, template="chat",
                       pairs_summary=None, callbacks=()):
    """Rule alignment_reward: LoRA (task SEQ_CLS) on a 1-label sequence-classification head over the base."""

    device, dtype = start_run(seed)
    config = {"method": "reward_model", "reward": dict(reward), "max_length": max_length, "seed": seed,
              "pairs": str(pairs_path), "base": str(base_dir)}
    work_dir = Path(work_root) / "checkpoints"
    tokenizer = load_tokenizer(base_dir, padding_side="right")
    rows = read_jsonl(pairs_path)
    # Pre-tokenised (chosen_ids / rejected_ids), so TRL keeps every pair and uses our fitting.
    dataset = Dataset.from_list(
        [
            {
                "chosen_ids": rm_input_ids(tokenizer, r["prompt"], r["chosen"], max_length),
                "rejected_ids": rm_input_ids(tokenizer, r["prompt"], r["rejected"], max_length),
            }
            for r in rows
        ]
    )
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=dtype)
    targets = lora_targets(model.config.model_type, reward["target_modules"], attention_only=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=reward["lora_r"],
        lora_alpha=reward["lora_alpha"],
        lora_dropout=reward["lora_dropout"],
        target_modules=targets,
    )
    train = {k: reward[k] for k in ("steps", "learning_rate", "save_steps", "logging_steps") if k in reward}
    args = RewardConfig(**common_args(train, work_dir, seed, device, dtype),
                        per_device_train_batch_size=reward["batch_size"], max_length=max_length)
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=lora, callbacks=list(callbacks))
    key = {"config": config, "inputs": {str(p): content_hash(p) for p in (base_dir, pairs_path)}}
    run = run_trainer(trainer, work_dir, key, device)
    cost = {**run, "train_pairs": len(trainer.train_dataset), "pairs_in_file": len(rows)}
    sections = [
        ("Start point", [
            f"- base `{base_dir}` as `AutoModelForSequenceClassification(num_labels=1)` (a new linear "
            "`score` head) + a new LoRA (`task_type=SEQ_CLS`; the head is trained and saved with the adapter) "
            f"on `{targets}` (alignment.reward.target_modules: {reward['target_modules']}).",
            "- trained with TRL's RewardTrainer (Bradley-Terry loss -log sigmoid(r_chosen - r_rejected)).",
            f"- input text: prompt rendered with the `{template}` template + response + EOS; score at the last "
            "non-pad token.",
            "- load: `lmlab.alignment.reward.load_reward_model(BASE, this_folder)`.",
        ]),
        ("Data", [f"- training pairs: {len(trainer.train_dataset)} of {len(rows)} in `{pairs_path}`; per source: "
                  f"{count_by(rows, 'source')}. Inputs over {max_length} tokens keep the response start and the prompt "
                  "end (`lmlab.alignment.reward.rm_input_ids`).",
                  *([f"- pair summary: `{pairs_summary}`"] if pairs_summary else [])]),
        ("Config", kv_lines(config)),
        hardware_section(device, seed),
    ]
    return finish(trainer, tokenizer, out_dir, work_dir, "Reward model (LoRA, sequence classification)", sections,
                  config, RM_LOG_KEYS, cost, timing_path=timing_path)


# --------------------------------------------------------------------------- evaluation


def accuracy_table(items, scorers, n_resamples, confidence, seed):
    """{scorer: {group: {estimate, low, high, n, method, ties}}} for "all" and each failure mode."""
    groups = {"all": items}
    for mode in FAILURE_MODES:
        subset = [it for it in items if it["failure_mode"] == mode]
        if subset:
            groups[mode] = subset
    out = {}
    for scorer in scorers:
        out[scorer] = {}
        for group, rows in groups.items():
            values = [r[f"{scorer}_outcome"] for r in rows]
            # Outcomes are 1, 1/2 (tie) or 0: the Wilson interval of their mean never collapses at 0/n or n/n.
            ci = proportion_ci(values, confidence)
            ci["ties"] = sum(v == 0.5 for v in values) / len(values)
            out[scorer][group] = ci
    return out


def stratified_subset(rows, max_rows, seed, key="failure_mode"):
    """A seeded subset of at most max_rows rows with the groups of `key` as equal as possible,
    in file order (None or a large max_rows keeps every row)."""
    if max_rows is None or max_rows >= len(rows):
        return list(rows)
    groups = {}
    for i, row in enumerate(rows):
        groups.setdefault(row[key], []).append(i)
    rng = random.Random(seed)
    for indices in groups.values():
        rng.shuffle(indices)
    keep, names = set(), sorted(groups)
    while len(keep) < max_rows:
        for name in names:
            if groups[name] and len(keep) < max_rows:
                keep.add(groups[name].pop())
    return [row for i, row in enumerate(rows) if i in keep]


def evaluate_reward_models(base_dir, reward_dir, preferences_test, out_json, out_items, template, max_length,
                           n_resamples=2000, confidence=0.95, seed=0, max_pairs=None):
    """Rule alignment_reward_eval: pairwise accuracy of heuristic and learned scorers on preferences_test
    (all pairs, or a seeded subset of `max_pairs` balanced over failure modes)."""
    model, tokenizer = load_reward_model(base_dir, reward_dir)
    all_rows = read_jsonl(preferences_test)
    rows = stratified_subset(all_rows, max_pairs, seed)
    prompts = [render_pair_prompt(r["prompt"], r["task"], template, tokenizer) for r in rows]
    chosen = reward_scores(model, tokenizer, prompts, [r["chosen"] for r in rows], max_length)
    rejected = reward_scores(model, tokenizer, prompts, [r["rejected"] for r in rows], max_length)
    items = []
    for r, c, j in zip(rows, chosen, rejected):
        hc, hr = heuristic_score(r["chosen"], r["task"]), heuristic_score(r["rejected"], r["task"])
        items.append(
            {
                "id": r["id"],
                "task": r["task"],
                "lang": r["lang"],
                "failure_mode": r["failure_mode"],
                "heuristic_chosen": hc,
                "heuristic_rejected": hr,
                "heuristic_outcome": pairwise_outcome(hc, hr),
                "learned_chosen": c,
                "learned_rejected": j,
                "learned_outcome": pairwise_outcome(c, j),
            }
        )
    table = accuracy_table(items, ("heuristic", "learned"), n_resamples, confidence, seed)
    diff = paired_mean_difference([it["learned_outcome"] for it in items], [it["heuristic_outcome"] for it in items],
                                  n_resamples=n_resamples, confidence=confidence, seed=seed)
    result = {
        "n_pairs": len(items),
        "n_available": len(all_rows),
        "accuracy": table,
        "learned_minus_heuristic": diff,
        "tie_rule": "a tie counts 0.5",
        "bootstrap": {"resamples": n_resamples, "confidence": confidence, "seed": seed},
        "template": template,
        "max_length": max_length,
        "reward_model": str(reward_dir),
        "test_file": str(preferences_test),
    }
    write_jsonl(out_items, items)
    write_json(out_json, result)
    return result
