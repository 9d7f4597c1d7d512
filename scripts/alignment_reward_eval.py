"""Rule alignment_reward_eval: heuristic vs learned reward pairwise accuracy on preferences_test."""

from lmlab.alignment.reward import evaluate_reward_models
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    evaluate_reward_models(
        smk.input.base,
        smk.input.model,
        smk.input.preferences_test,
        smk.output.accuracy,
        smk.output.scores,
        smk.params.template,
        smk.params.max_length,
        smk.params.bootstrap["resamples"],
        smk.params.bootstrap["confidence"],
        step_seed(smk),
        max_pairs=smk.params.max_pairs,
    )
