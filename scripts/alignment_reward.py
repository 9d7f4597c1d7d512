"""Rule alignment_reward: the learned reward model (TRL RewardTrainer, LoRA SEQ_CLS over the base)."""

from lmlab.alignment.reward import train_reward_model
from lmlab.core import launch
from lmlab.core.step import step, step_seed

with step(snakemake) as smk:
    # DDP (accelerate launch) with hpc.gpus > 1 GPUs; otherwise training runs in this process.
    launch.run(
        train_reward_model,
        num_processes=launch.processes_for(smk.params.gpus),
        launch_dir=f"{smk.params.work}/launch",
        base_dir=smk.input.base,
        pairs_path=smk.input.pairs,
        out_dir=smk.output.model,
        timing_path=smk.output.timing,
        work_root=smk.params.work,
        reward=smk.params.reward,
        max_length=smk.params.max_length,
        seed=step_seed(smk),
        template=smk.params.template,
        pairs_summary=smk.input.summary,
    )
