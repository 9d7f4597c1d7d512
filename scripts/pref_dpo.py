"""Rule pref_dpo: DPO from the SFT adapter (reference = the SFT model); one run per beta."""

from lmlab.align import train_dpo
from lmlab.step import step

with step(snakemake) as smk:
    train_dpo(
        smk.input.base,
        smk.input.sft,
        smk.input.pairs,
        smk.output.model,
        smk.params.work,
        smk.params.train,
        float(smk.wildcards.beta),
        smk.params.loss_type,
        smk.params.max_length,
        smk.config["seed"],
        template=smk.params.template,
        pairs_summary=smk.input.summary,
    )
