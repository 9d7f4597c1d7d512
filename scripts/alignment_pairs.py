"""Rule alignment_pairs: shipped + on-policy training pairs and results/alignment/pairs_summary.json."""

from lmlab.alignment.pairs import make_pairs
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    make_pairs(
        smk.input.preferences_train,
        smk.input.samples,
        smk.input.base,
        smk.input.sft,
        smk.output.pairs,
        smk.output.summary,
        smk.params.template,
        smk.params.sources,
        smk.params.margin,
        smk.params.max_shipped,
        smk.params.max_prompt_tokens,
        seed=step_seed(smk),
    )
