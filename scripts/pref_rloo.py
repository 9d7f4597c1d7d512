"""Rule pref_rloo: RLOO from the SFT adapter; arm "rm" (learned reward) or "verifiable" (gold checks)."""

from lmlab.align import train_rloo
from lmlab.step import step

with step(snakemake) as smk:
    train_rloo(
        smk.input.base,
        smk.input.sft,
        smk.input.sft_train,
        smk.output.model,
        smk.params.work,
        smk.params.train,
        smk.wildcards.arm,
        smk.params.rloo,
        smk.config["seed"],
        template=smk.params.template,
        reward_dir=smk.input.get("reward_model"),
    )
