"""Rule evaluation_score: per-item metrics of one cell and their means by task family."""

from lmlab.evaluation.score import score_cell
from lmlab.core.step import step

with step(snakemake) as smk:
    score_cell(smk.input.generations, smk.output.per_item, smk.output.aggregate, smk.params.rouge_threshold)
