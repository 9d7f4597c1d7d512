"""Rule sft_summary: results/sft/summary.json, cost and loss tables, loss-curve figure."""

from lmlab.core.step import step
from lmlab.sft.summary import summarize

with step(snakemake) as smk:
    adapters = [smk.input.adapters] if isinstance(smk.input.adapters, str) else list(smk.input.adapters)
    timings = [smk.input.timings] if isinstance(smk.input.timings, str) else list(smk.input.timings)
    summarize(
        dict(zip(smk.params.adapters, adapters, strict=True)),
        dict(zip(smk.params.adapters, timings, strict=True)),
        smk.output.summary,
        smk.output.timing,
        smk.output.cost,
        smk.output.losses,
        smk.output.png,
        smk.output.pdf,
        variants=smk.params.variants,
    )
