"""Rule agents_run: one agent arm with one model on the task subset -> traces + metrics."""

from lmlab.agents.run import run_arm
from lmlab.core.step import step

with step(snakemake) as smk:
    run_arm(
        smk.input.base,
        smk.params.adapter,
        smk.input.tasks,
        smk.input.kb,
        smk.output.traces,
        smk.output.metrics,
        smk.output.per_task,
        smk.output.timing,
        smk.wildcards.model,
        smk.wildcards.arm,
        **smk.params.run,
    )
