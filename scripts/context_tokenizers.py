"""Rule context_tokenizers: train the byte-level BPE tokenizers on sft_train."""

from lmlab.core.step import step
from lmlab.context.tokenizers import train_tokenizers

with step(snakemake) as smk:
    train_tokenizers(
        smk.input.train,
        smk.params.vocab_sizes,
        smk.output.tokenizers,
        smk.output.info,
        min_frequency=smk.params.min_frequency,
    )
