"""Rule evaluation_human_sheet: the blind annotation sheet (codes, shuffled) and its separate key."""

from lmlab.evaluation.human import export_sheet
from lmlab.core.step import step

with step(snakemake) as smk:
    export_sheet(
        smk.input.test_items,
        smk.params.models,
        list(smk.input.generations),
        smk.input.rubric,
        smk.output.sheet,
        smk.output.key,
        n_items=smk.params.n_items,
        seed=smk.config["seed"],
    )
