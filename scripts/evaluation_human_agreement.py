"""Rule evaluation_human_agreement: inter-annotator agreement (weighted kappa) on filled sheets."""

from lmlab.evaluation.human import agreement
from lmlab.core.step import step

with step(snakemake) as smk:
    agreement(list(smk.input.sheets), smk.input.key, smk.input.rubric, smk.output.agreement, smk.output.pairs)
