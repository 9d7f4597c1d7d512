"""Rule alignment_summary: results/alignment/summary.json, tables and figures of the stage."""

from lmlab.alignment.summary import summarize_alignment
from lmlab.core.step import step


def as_list(paths):
    # Snakemake returns a one-element named input as a plain string.
    return [paths] if isinstance(paths, str) else list(paths)


with step(snakemake) as smk:
    summarize_alignment(
        pairs_summary=smk.input.pairs_summary,
        reward_accuracy=smk.input.reward_accuracy,
        reward_model=smk.input.reward_model,
        dpo_models=dict(zip(smk.params.dpo_betas, as_list(smk.input.dpo), strict=True)),
        main_beta=smk.params.main_beta,
        orpo_model=smk.input.orpo,
        rloo_models=dict(zip(smk.params.rloo_arms, as_list(smk.input.rloo), strict=True)),
        protocol=smk.params.protocol,
        out_summary=smk.output.summary,
        table_dir=smk.output.tables,
        figure_dir=smk.output.figures,
        timings=dict(zip(smk.params.timed_models, as_list(smk.input.timings), strict=True)),
        out_timing=smk.output.timing,
    )
