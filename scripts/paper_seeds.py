"""Rule paper_seeds: every training seed's primary comparisons side by side, and their spread."""

from lmlab.core.step import step
from lmlab.paper.seeds import write_seed_summary

with step(snakemake) as smk:
    write_seed_summary(
        smk.params.seeds,
        smk.input.evaluation,
        smk.input.agents,
        smk.output.summary,
        smk.output.table,
        smk.output.png,
        smk.output.pdf,
    )
