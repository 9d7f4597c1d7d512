"""Rule evaluation_judge: win rates of each model over its baseline, judged by the learned reward model."""

from lmlab.evaluation.judge import judge_all
from lmlab.core.step import step

with step(snakemake) as smk:
    judge_all(
        smk.input.test_items,
        smk.params.models,
        list(smk.input.generations),
        smk.input.base,
        smk.input.reward_model,
        [tuple(pair) for pair in smk.params.pairs],
        smk.output.scores,
        list(smk.output.results),
        list(smk.output.per_item),
        template=smk.params.template,
        max_length=smk.params.max_length,
        batch_size=smk.params.batch_size,
        n_resamples=smk.params.n_resamples,
        confidence=smk.params.confidence,
        seed=smk.config["seed"],
    )
