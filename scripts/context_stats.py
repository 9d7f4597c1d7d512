"""Rule context_stats: tokenizers, templates, truncation, sliding windows, cost."""

from pathlib import Path

from lmlab.context.stats import context_stats
from lmlab.core.step import step

with step(snakemake) as smk:
    context_stats(
        {name: smk.input[name] for name in smk.params.datasets},
        smk.input.base,
        dict(zip(smk.params.bpe, smk.input.tokenizers)),
        Path(smk.output.stats).parent,
        smk.params.templates,
        smk.params.template,
        smk.params.windows,
        max_rows=smk.params.max_rows,
        timing_path=smk.output.timing,
        seed=smk.config["seed"],
        **smk.params.kw,
    )
