"""Rule context_tokenizers: train the byte-level BPE tokenizers on sft_train."""

from lmlab.core.io import read_jsonl, write_json
from lmlab.core.step import step
from lmlab.context.tokenizers import train_bpe, training_texts

with step(snakemake) as smk:
    texts = training_texts(read_jsonl(smk.input.train))
    info = {
        f"bpe-{size}": train_bpe(texts, size, path, smk.params.min_frequency)
        for size, path in zip(smk.params.vocab_sizes, smk.output.tokenizers)
    }
    write_json(smk.output.info, info)
