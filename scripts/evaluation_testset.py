"""Rule evaluation_testset: the stratified, seeded subset of sft_test that every cell is evaluated on."""

from lmlab.evaluation.testset import write_test_items
from lmlab.core.step import step

with step(snakemake) as smk:
    write_test_items(
        smk.input.sft_test,
        smk.output.test_items,
        smk.params.max_items_per_task,
        smk.config["seed"],
        smk.params.max_items_by_task,
    )
