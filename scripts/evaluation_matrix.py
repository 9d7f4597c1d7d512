"""Rule evaluation_matrix: results/evaluation/matrix.tsv, every cell of the full factorial, in design or not, ran or not."""

from lmlab.evaluation.design import write_matrix
from lmlab.core.step import step

with step(snakemake) as smk:
    write_matrix(
        smk.output.matrix,
        all_models=smk.params.all_models,
        models=smk.params.models,
        prompts=smk.params.prompts,
        contexts=smk.params.contexts,
        design=smk.params.design,
        reference=smk.params.reference,
        generations_dir=smk.params.generations_dir,
        agent_arms=smk.params.agent_arms,
    )
