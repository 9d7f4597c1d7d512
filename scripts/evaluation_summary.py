"""Rule evaluation_summary: results/evaluation/summary.json, tables and figures for the paper."""

from lmlab.evaluation.summary import evaluation_summary
from lmlab.core.step import step

with step(snakemake) as smk:
    evaluation_summary(
        smk.input.stats,
        smk.input.matrix,
        smk.input.test_items,
        smk.output.summary,
        human_eval=smk.input.get("human_agreement") or None,
        human_key=smk.input.human_key,
        prompts=smk.params.prompts,
        sft_template=smk.params.sft_template,
        cell_timings=dict(zip(smk.params.cells, smk.input.timings, strict=True)),
        out_timing=smk.output.timing,
        out_timing_table=smk.output.timing_table,
    )
