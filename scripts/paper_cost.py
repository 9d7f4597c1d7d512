"""Rule paper_cost: per-rule wall time and peak memory from every job's benchmark file,
training throughput and tokens per example -> results/paper/cost/{summary.json, tables, figures}."""

from pathlib import Path

from lmlab.paper.cost import cost_summary
from lmlab.core.timing import read_results
from lmlab.core.step import step

with step(snakemake) as smk:
    # Each stage's summary with its timings (timing/summary.json) merged back.
    stages = {
        k: read_results(smk.input[k], smk.input[f"{k}_timing"])
        for k in ("sft", "alignment", "evaluation")
        if k in smk.input.keys()
    }
    cost_summary(
        smk.input.benchmarks,
        smk.params.rules,
        smk.output.summary,
        Path(smk.output.rules_table).parent,
        Path(smk.output.png).parent,
        not_benchmarked=smk.params.not_benchmarked,
        **stages,
    )
