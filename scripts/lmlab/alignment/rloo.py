"""RLOO (TRL's RLOOTrainer, REINFORCE leave-one-out) from the SFT adapter, with a KL term
against the SFT model; one arm rewarded by the learned reward model, one by gold checks.

The prompts are the on-policy sampler's (`lmlab.alignment.pairs.training_prompts`, same
selection), with the gold columns the verifiable reward reads. Start point and reference
check: `lmlab.alignment.policy`; checkpoints, resume and the output folder: `lmlab.training`.
"""

import json
from pathlib import Path

import torch
from datasets import Dataset
from trl import RLOOConfig, RLOOTrainer
from trl.trainer.utils import RepeatSampler

from lmlab.alignment.pairs import training_prompts
from lmlab.alignment.policy import check_reference, load_policy, require_reference
from lmlab.models.reward import load_reward_model, reward_scores
from lmlab.alignment.scoring import gold_score
from lmlab.models.base import load_tokenizer
from lmlab.training.checkpoints import content_hash
from lmlab.training.outputs import count_by, kv_lines
from lmlab.training.run import common_args, finish, hardware_section, run_trainer, start_run

LOG_KEYS = ("loss", "reward", "reward_std", "kl", "entropy", "completions/mean_length")


class VerifiableReward:
    """RLOO reward from the gold answer: lmlab.alignment.scoring.gold_score (correct + format - length)."""

    __name__ = "verifiable"

    def __call__(self, prompts, completions, task, gold, meta_json, **kwargs):
        return [
            gold_score({"task": t, "output": g, "meta": json.loads(m)}, c)["score"]
            for c, t, g, m in zip(completions, task, gold, meta_json)
        ]


class LearnedReward:
    """RLOO reward from the learned reward model, on the input it was trained on
    (rendered prompt + completion + EOS, fitted by lmlab.alignment.reward.rm_input_ids)."""

    __name__ = "reward_model"

    def __init__(self, model, tokenizer, max_length, batch_size=16):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    def __call__(self, prompts, completions, **kwargs):
        return reward_scores(self.model, self.tokenizer, prompts, completions, self.max_length, self.batch_size)


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler with the shuffle order of epoch e fixed by (seed, e) through the
    `set_epoch` the Trainer calls before each epoch: the order of an uninterrupted run, and a
    run resumed in epoch e gets the order the uninterrupted run drew there (TRL's own sampler
    draws each epoch's order from one generator, so a resumed run started over at the first
    epoch's order)."""

    def set_epoch(self, epoch):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed)
            for _ in range(epoch):
                torch.randperm(self.num_samples, generator=self.generator)


class ResumableRLOOTrainer(RLOOTrainer):
    """RLOOTrainer whose prompt order survives a resume (EpochSeededRepeatSampler)."""

    def _get_train_sampler(self, dataset=None):
        s = super()._get_train_sampler(dataset)
        return EpochSeededRepeatSampler(s.data_source, s.mini_repeat_count, s.batch_size, s.repeat_count, s.shuffle,
                                        s.seed)


def rloo_dataset(sft_train, n_prompts, template, tokenizer, seed, max_prompt_tokens=None):
    """(dataset, rows): the on-policy sampler's prompts with the gold columns the verifiable reward reads."""
    rows, prompts = training_prompts(sft_train, n_prompts, seed, template, tokenizer, max_prompt_tokens)
    return Dataset.from_list(
        [
            {
                "prompt": prompt,
                "task": r["task"],
                "gold": r["output"],
                "meta_json": json.dumps(r.get("meta") or {}, sort_keys=True),
            }
            for r, prompt in zip(rows, prompts)
        ]
    ), rows


def train_rloo(base_dir, sft_dir, sft_train, out_dir, timing_path, work_root, train, reward, rloo, seed, template="chat",
               reward_dir=None, callbacks=()):
    """Rule alignment_rloo: one RLOO adapter (`reward`: "rm" or "verifiable"); returns its cost record."""
    if reward not in ("rm", "verifiable"):
        raise ValueError(f"reward {reward!r} is not one of rm, verifiable")
    device, dtype = start_run(seed)
    config = {"method": f"rloo_{reward}", "train": dict(train), "rloo": dict(rloo), "seed": seed,
              "template": template,
              "sft": str(sft_dir), "reward_model": str(reward_dir) if reward == "rm" else None}
    work_dir = Path(work_root) / "checkpoints"
    tokenizer = load_tokenizer(sft_dir, padding_side="left")
    dataset, rows = rloo_dataset(sft_train, rloo["prompts"], template, tokenizer, seed, rloo.get("max_prompt_tokens"))
    if reward == "rm":
        rm_model, rm_tokenizer = load_reward_model(base_dir, reward_dir, device, dtype)
        reward_func = LearnedReward(rm_model, rm_tokenizer, max_length=rloo["reward_max_length"])
    else:
        reward_func = VerifiableReward()
    model = load_policy(base_dir, sft_dir, device, dtype)
    generations = rloo["num_generations"]
    args = RLOOConfig(
        **common_args(train, work_dir, seed, device, dtype),
        per_device_train_batch_size=rloo["prompts_per_step"] * generations,
        num_generations=generations,
        max_completion_length=rloo["max_completion_length"],
        temperature=rloo["temperature"],
        top_p=rloo.get("top_p", 1.0),
        beta=rloo["beta"],
        shuffle_dataset=True,
        disable_dropout=True,  # as DPO and ORPO do by default; SFT adapters carry LoRA dropout
    )
    trainer = ResumableRLOOTrainer(model=model, reward_funcs=[reward_func], args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=list(callbacks))
    if rloo["beta"] > 0:
        require_reference(trainer, "RLOOTrainer")
    inputs = [base_dir, sft_dir, sft_train, *([reward_dir] if reward == "rm" else [])]
    key = {"config": config, "inputs": {str(p): content_hash(p) for p in inputs}}
    run = run_trainer(trainer, work_dir, key, device)
    drift = check_reference(trainer.model, sft_dir, "RLOO") if rloo["beta"] > 0 else None
    cost = {**run, "prompts": len(dataset),
            "completions_generated": train["steps"] * rloo["prompts_per_step"] * generations * trainer.args.world_size}
    reward_line = (f"- reward: the learned reward model `{reward_dir}` (LoRA sequence classifier over the base), "
                   "scoring rendered prompt + completion + EOS, as in its training."
                   if reward == "rm" else
                   "- reward: verifiable, from the gold answer through `lmlab.data.metrics` (correct 1.0 + format valid "
                   "0.5 - over-long 0.25; `lmlab.alignment.scoring.gold_score`).")
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), trained further "
            "with TRL's RLOOTrainer (REINFORCE leave-one-out).",
            f"- KL reference: the SFT model (TRL's frozen `ref` copy of the SFT adapter), beta {rloo['beta']}"
            + (f"; max |w_ref - w_sft| after training = {drift:.3g}." if drift is not None else "."),
            reward_line,
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        ("Data", [f"- prompts: {len(dataset)} sft_train rows (`lmlab.alignment.pairs.select_prompts`, seed {seed}), "
                  "the same prompts as the on-policy pair sampler.",
                  f"- per task: {json.dumps(count_by(rows, 'task'))}"]),
        ("Config", kv_lines(config)),
        hardware_section(device, seed),
    ]
    return finish(trainer, tokenizer, out_dir, work_dir, f"RLOO adapter ({reward} reward)", sections, config, LOG_KEYS,
                  cost, timing_path=timing_path)
