"""Rule evaluation_generate: greedy, batched generations of one (model, prompt, context) cell."""

from lmlab.evaluation.generate import generate_cell
from lmlab.core.step import step

with step(snakemake) as smk:
    generate_cell(
        smk.input.test_items,
        smk.input.base,
        smk.input.get("adapter"),
        smk.output.generations,
        smk.output.timing,
        model_name=smk.wildcards.model,
        prompt_name=smk.wildcards.prompt,
        template=smk.params.template,
        constrained=smk.params.constrained,
        context=int(smk.wildcards.context),
        max_new_tokens=smk.params.max_new_tokens,
        batch_size=smk.params.batch_size,
    )
