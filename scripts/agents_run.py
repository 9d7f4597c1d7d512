"""Rule agents_run: every agent arm with one model (loaded once) on the task subset -> traces + metrics per arm."""

from lmlab.agents.run import run_arms
from lmlab.core.step import step

with step(snakemake) as smk:
    outputs = {
        arm: {"traces": traces, "metrics": metrics, "per_task": per_task, "timing": timing}
        for arm, traces, metrics, per_task, timing in zip(
            smk.params.arms, smk.output.traces, smk.output.metrics, smk.output.per_task, smk.output.timing
        )
    }
    run_arms(smk.input.base, smk.params.adapter, smk.input.tasks, smk.input.kb, outputs, smk.wildcards.model,
             **smk.params.run)
