"""Rule pref_orpo: ORPO (trl.experimental.orpo) continuing the SFT adapter, no reference model."""

from lmlab.align import train_orpo
from lmlab.step import step

with step(snakemake) as smk:
    train_orpo(
        smk.input.base,
        smk.input.sft,
        smk.input.pairs,
        smk.output.model,
        smk.params.work,
        smk.params.train,
        smk.params.beta,
        smk.params.max_length,
        smk.config["seed"],
        template=smk.params.template,
        pairs_summary=smk.input.summary,
    )
