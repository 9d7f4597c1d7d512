"""Rule agents_summary: every run's traces -> summary.json, ablation/paired tables, figure."""

from lmlab.agents.summary import summarise_agents
from lmlab.core.step import step

with step(snakemake) as smk:
    runs = [
        {**run, "traces": traces, "metrics": metrics, "timing": timing}
        for run, traces, metrics, timing in zip(
            smk.params.runs, smk.input.traces, smk.input.metrics, smk.input.timings, strict=True
        )
    ]
    summarise_agents(
        runs,
        smk.input.tasks,
        smk.output.summary,
        smk.output.ablation,
        smk.output.paired,
        smk.output.categories,
        smk.output.png,
        smk.output.pdf,
        smk.params.models,
        smk.params.arms,
        timing_path=smk.output.timing,
        latency_path=smk.output.latency,
        skipped_models=smk.params.skipped,
        n_resamples=smk.params.n_resamples,
        primary=smk.params.primary,
        seed=smk.params.seed,
        settings=smk.params.settings,
    )
