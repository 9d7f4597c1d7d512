"""Rule alignment_sample: k samples per training prompt from the SFT model, scored against the gold."""

from lmlab.alignment.pairs import sample_onpolicy
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    sample_onpolicy(
        smk.input.base,
        smk.input.sft,
        smk.input.sft_train,
        smk.output.samples,
        smk.params.template,
        max_prompt_tokens=smk.params.max_prompt_tokens,
        seed=step_seed(smk),
        **smk.params.sampling,
    )
