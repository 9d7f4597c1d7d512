"""Rule context_bpb: one tiny LM per tokenizer, validation bits per byte."""

from lmlab.context.bpb import train_and_score
from lmlab.core.step import step

with step(snakemake) as smk:
    train_and_score(
        smk.input.train,
        smk.input.validation,
        smk.wildcards.lm,
        smk.output.result,
        tokenizer_path=smk.input.tokenizer or None,
        seed=smk.config["seed"],
        timing_path=smk.output.timing,
        **smk.params.kw,
    )
