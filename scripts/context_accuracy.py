"""Rule context_accuracy: base-model accuracy on long-context QA per context window."""

from lmlab.context.accuracy import context_accuracy
from lmlab.core.step import step

with step(snakemake) as smk:
    context_accuracy(
        smk.input.test,
        smk.input.base,
        smk.output.generations,
        smk.output.accuracy,
        smk.params.template,
        smk.params.windows,
        items=smk.params.n_items,
        max_new_tokens=smk.params.max_new_tokens,
        batch_size=smk.params.batch_size,
        n_resamples=smk.params.n_resamples,
        seed=smk.config["seed"],
        timing_path=smk.output.timing,
        **smk.params.kw,
    )
