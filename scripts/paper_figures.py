"""Rule paper_figures: copy stage figures/tables into the report, export LaTeX, draw the data figure."""

from lmlab.paper.figures import build_figures
from lmlab.core.step import step

with step(snakemake) as smk:
    summaries = {stage: smk.input[stage] for stage in smk.params.stages}
    build_figures(summaries, smk.input.manifest, smk.output.figures, smk.output.tables, smk.output.timing)
