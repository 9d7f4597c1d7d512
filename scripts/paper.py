"""Rule paper: render results/paper/paper.html and provenance.json from the stages' results."""

from lmlab.core.step import step
from lmlab.paper.render import write_paper

with step(snakemake) as smk:
    write_paper(
        smk.output.html,
        smk.output.provenance,
        templates=smk.input.templates,
        config=smk.config,
        manifest=smk.input.manifest,
        base_model_dir=smk.input.base_model,
        summaries={stage: smk.input[stage] for stage in smk.params.stages},
        sources=smk.input.sources,
        records=smk.input.records,
    )
