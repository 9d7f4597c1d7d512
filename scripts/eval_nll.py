"""Rule eval_nll: gold-answer NLL of every model on the reference prompt and context."""

from lmlab.evaluate import nll_for_model
from lmlab.step import step

with step(snakemake) as smk:
    for model, adapter, out in zip(smk.params.models, smk.params.adapters, smk.output.nll):
        nll_for_model(
            smk.input.test_items,
            smk.input.base,
            adapter or None,
            out,
            model_name=model,
            template=smk.params.template,
            constrained=smk.params.constrained,
            context=smk.params.context,
            batch_size=smk.params.batch_size,
        )
