"""Rule data_validate: check every raw source, then write results/data/*.jsonl + manifest."""

from pathlib import Path

from lmlab.data.validate import validate_all
from lmlab.core.step import step

with step(snakemake) as smk:
    # Each source as the config names it: a path (the rule's input) or a hub dataset entry.
    datasets = {name: (smk.params.sources[name], kind) for name, kind in smk.params.kinds.items()}
    generator = smk.input.get("generator")
    validate_all(datasets, Path(smk.output.manifest).parent, generator)
