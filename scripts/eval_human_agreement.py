"""Rule eval_human_agreement: inter-annotator agreement (weighted kappa) on filled sheets."""

from lmlab.human_eval import agreement
from lmlab.step import step

with step(snakemake) as smk:
    agreement(list(smk.input.sheets), smk.input.key, smk.input.rubric, smk.output.agreement, smk.output.pairs)
