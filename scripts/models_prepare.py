"""Rule models_prepare: GGUF from the wheel, a tiny random model, or a hub id -> HF folder."""

from lmlab.models.base import models_prepare
from lmlab.core.step import step

with step(snakemake) as smk:
    models_prepare(smk.params.source, smk.output.model, tiny=smk.params.tiny, seed=smk.config["seed"])
