"""Rule sft_train: one LoRA/QLoRA adapter per template (lmlab.sft.run_sft)."""

from lmlab.sft import run_sft
from lmlab.step import step

with step(snakemake) as smk:
    import torch

    # DDP only where there are GPUs to spread over; CPU and one-GPU runs train in this process.
    gpus = smk.params.gpus if torch.cuda.is_available() else 1
    run_sft(
        num_processes=min(gpus, max(torch.cuda.device_count(), 1)),
        base_dir=smk.input.base,
        train_paths=smk.params.mix,
        validation_path=smk.input.validation,
        out_dir=smk.output.adapter,
        work_dir=smk.params.work,
        template=smk.wildcards.template,
        cfg=smk.params.sft,
        seed=smk.config["seed"],
        manifest_path=smk.input.manifest,
    )
