# Instruction tuning with LoRA/QLoRA through TRL + PEFT.
# One adapter per template and training seed: <root>/seed-{seed}/models/sft/{template}/ (a
# standard PEFT folder + card, log); its wall-clock cost in <root>/seed-{seed}/sft/timing/.
# Checkpoints live in .../models/sft/.work/{template}/, which is not an output, so a run that
# was stopped (SIGTERM, SIGKILL, SLURM preemption) resumes there when run again.
SFT = config["sft"]
SFT_DIR = f"{SEED_ROOT}/models/sft"
SFT_TEMPLATES = config["templates"]
SFT_OUT = f"{SEED_ROOT}/sft"


SFT_MIX = {entry["dataset"]: data_path(entry["dataset"]) for entry in SFT["mix"]}


rule sft_train:
    input:
        base=BASE,
        manifest=f"{RESULTS}/data/manifest.json",
        validation=data_path(SFT["validation"]),
        mix=list(SFT_MIX.values()),
    output:
        adapter=directory(f"{SFT_DIR}/{{template}}"),
        timing=f"{SFT_OUT}/timing/train-{{template}}.json",
        prov=prov("sft_train-{template}-seed{seed}"),
    log:
        log_path("sft_train-{template}-seed{seed}"),
    benchmark:
        bench("sft_train-{template}-seed{seed}")
    wildcard_constraints:
        template="|".join(SFT_TEMPLATES),
    priority: lambda wc: PRIORITY_CHAIN if wc.template == alignment_template() else 0
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("sft_train"),
    params:
        sft=SFT,
        mix=SFT_MIX,
        work=f"{SFT_DIR}/.work/{{template}}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/sft_train.py"


rule sft_summary:
    input:
        adapters=expand(
            f"{SFT_DIR}/{{template}}", template=SFT_TEMPLATES, allow_missing=True
        ),
        timings=expand(
            f"{SFT_OUT}/timing/train-{{template}}.json",
            template=SFT_TEMPLATES,
            allow_missing=True,
        ),
    output:
        summary=f"{SFT_OUT}/summary.json",
        timing=f"{SFT_OUT}/timing/summary.json",
        cost=f"{SFT_OUT}/timing/sft_cost.tsv",
        losses=f"{SFT_OUT}/tables/sft_losses.tsv",
        png=f"{SFT_OUT}/figures/sft_curves.png",
        pdf=f"{SFT_OUT}/figures/sft_curves.pdf",
        prov=prov("sft_summary-seed{seed}"),
    log:
        log_path("sft_summary-seed{seed}"),
    benchmark:
        bench("sft_summary-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("sft_summary"),
    params:
        templates=SFT_TEMPLATES,
    script:
        "../scripts/sft_summary.py"


PROVENANCE.extend(
    for_seeds(
        expand(
            prov("sft_train-{template}-seed{seed}"),
            template=SFT_TEMPLATES,
            allow_missing=True,
        )
    )
)
PROVENANCE.extend(for_seeds(prov("sft_summary-seed{seed}")))
PAPER_INPUTS["sft"] = f"{SFT_OUT}/summary.json"
PAPER_TIMINGS["sft"] = f"{SFT_OUT}/timing/summary.json"
