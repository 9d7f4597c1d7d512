"""Rule models_prepare: GGUF from the wheel, a tiny random model, or a hub id -> HF folder."""

from lmlab.models.base import prepare_base
from lmlab.core.step import step

with step(snakemake) as smk:
    prepare_base(smk.params.source, smk.output.model, tiny=smk.params.tiny, seed=smk.config["seed"])
