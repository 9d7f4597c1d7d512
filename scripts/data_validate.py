"""Rule data_validate: check every raw file, then write results/data/*.jsonl + manifest."""

from pathlib import Path

from lmlab.data.validate import validate_all
from lmlab.core.step import step

with step(snakemake) as smk:
    datasets = {name: (smk.input[name], kind) for name, kind in smk.params.kinds.items()}
    generator = smk.input.get("generator")
    validate_all(datasets, Path(smk.output.manifest).parent, generator)
