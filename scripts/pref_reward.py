"""Rule pref_reward: the learned reward model (TRL RewardTrainer, LoRA SEQ_CLS over the base)."""

from lmlab.reward import train_reward_model
from lmlab.step import step

with step(snakemake) as smk:
    train_reward_model(
        smk.input.base,
        smk.input.pairs,
        smk.output.model,
        smk.params.work,
        smk.params.reward,
        smk.params.max_length,
        smk.config["seed"],
        template=smk.params.template,
        pairs_summary=smk.input.summary,
    )
