"""Rule alignment_dpo: DPO from the SFT adapter (reference = the SFT model); one run per beta."""

from lmlab.alignment.dpo import train_dpo
from lmlab.core import launch
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    # DDP (accelerate launch) with hpc.gpus > 1 GPUs; otherwise training runs in this process.
    launch.run(
        train_dpo,
        num_processes=launch.processes_for(smk.params.gpus),
        launch_dir=f"{smk.params.work}/launch",
        base_dir=smk.input.base,
        sft_dir=smk.input.sft,
        pairs_path=smk.input.pairs,
        out_dir=smk.output.model,
        timing_path=smk.output.timing,
        work_root=smk.params.work,
        train=smk.params.train,
        beta=float(smk.wildcards.beta),
        loss_type=smk.params.loss_type,
        max_length=smk.params.max_length,
        seed=step_seed(smk),
        template=smk.params.template,
        pairs_summary=smk.input.summary,
        sft_weight=smk.params.sft_weight,
    )
