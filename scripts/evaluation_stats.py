"""Rule evaluation_stats: intervals, paired comparisons (primary and exploratory families), NLL, win rates."""

from lmlab.evaluation.stats import evaluation_stats
from lmlab.core.step import step

with step(snakemake) as smk:
    evaluation_stats(
        smk.params.cells,
        list(smk.input.metrics),
        dict(zip(smk.params.nll_models, smk.input.nll)),
        list(smk.input.winrates),
        smk.output.stats.rsplit("/", 1)[0],
        design=smk.params.design,
        reference=smk.params.reference,
        n_resamples=smk.params.n_resamples,
        confidence=smk.params.confidence,
        seed=smk.config["seed"],
        alpha=smk.params.alpha,
        judge_status=smk.params.judge_status,
        primary=smk.params.primary,
    )
