"""Rule evaluation_nll: gold-answer NLL of one model on the reference prompt and context."""

from lmlab.evaluation.nll import nll_for_model
from lmlab.core.step import step

with step(snakemake) as smk:
    nll_for_model(
        smk.input.test_items,
        smk.input.base,
        smk.input.get("adapter"),
        smk.output.nll,
        model_name=smk.wildcards.model,
        template=smk.params.template,
        constrained=smk.params.constrained,
        context=smk.params.context,
        batch_size=smk.params.batch_size,
    )
