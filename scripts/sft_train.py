"""Rule sft_train: one LoRA/QLoRA adapter per template or variant (lmlab.sft.train.run_sft)."""

from lmlab.core.launch import processes_for
from lmlab.core.step import step, step_seed
from lmlab.sft.train import run_sft

with step(snakemake) as smk:
    # DDP only where there are GPUs to spread over; CPU and one-GPU runs train in this process.
    run_sft(
        num_processes=processes_for(smk.params.gpus),
        base_dir=smk.input.base,
        train_paths=smk.params.mix,
        validation_path=smk.input.validation,
        out_dir=smk.output.adapter,
        timing_path=smk.output.timing,
        work_dir=smk.params.work,
        template=smk.params.template,
        cfg=smk.params.sft,
        seed=step_seed(smk),
        manifest_path=smk.input.manifest,
    )
