"""Rule evaluation_errors: the rule-based error table, counts per model and examples per type."""

from lmlab.evaluation.errors import error_analysis
from lmlab.core.step import step

with step(snakemake) as smk:
    error_analysis(
        smk.params.cells,
        list(smk.input.generations),
        list(smk.input.metrics),
        smk.output.table,
        smk.output.summary,
        reference=smk.params.reference,
        overlong_factor=smk.params.overlong_factor,
        overlong_slack_words=smk.params.overlong_slack_words,
        examples_per_type=smk.params.examples_per_type,
        seed=smk.config["seed"],
    )
