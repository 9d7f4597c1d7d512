"""Rule alignment_rloo: RLOO from the SFT adapter; arm "rm" (learned reward) or "verifiable" (gold checks)."""

from lmlab.alignment.rloo import train_rloo
from lmlab.core import launch
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    # DDP (accelerate launch) with hpc.gpus > 1 GPUs; otherwise training runs in this process.
    launch.run(
        train_rloo,
        num_processes=launch.processes_for(smk.params.gpus),
        launch_dir=f"{smk.params.work}/launch",
        base_dir=smk.input.base,
        sft_dir=smk.input.sft,
        sft_train=smk.input.sft_train,
        out_dir=smk.output.model,
        timing_path=smk.output.timing,
        work_root=smk.params.work,
        train=smk.params.train,
        reward=smk.wildcards.arm,
        rloo=smk.params.rloo,
        seed=step_seed(smk),
        template=smk.params.template,
        reward_dir=smk.input.get("reward_model"),
    )
