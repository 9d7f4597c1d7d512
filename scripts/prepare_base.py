"""Rule prepare_base: GGUF from the wheel, a tiny random model, or a hub id -> HF folder."""

from lmlab.models import prepare_base
from lmlab.step import step

with step(snakemake) as smk:
    prepare_base(smk.params.source, smk.output.model, tiny=smk.params.tiny, seed=smk.config["seed"])
