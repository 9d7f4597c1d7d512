# Instruction tuning with LoRA/QLoRA through TRL + PEFT.
# One adapter per template: results/<run>/models/sft/{template}/ (a standard PEFT folder + card,
# log); its wall-clock cost in results/<run>/sft/timing/. Checkpoints live in results/models/sft/.work/{template}/, which is not an output, so
# a run that was stopped (SIGTERM, SIGKILL, SLURM preemption) resumes there when run again.
SFT = config["sft"]
SFT_DIR = f"{RESULTS}/models/sft"
SFT_TEMPLATES = config["templates"]
SFT_OUT = f"{RESULTS}/sft"


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
        prov=prov("sft_train-{template}"),
    log:
        log_path("sft_train-{template}"),
    benchmark:
        bench("sft_train-{template}")
    wildcard_constraints:
        template="|".join(SFT_TEMPLATES),
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("sft_train"),
    params:
        sft=SFT,
        mix=SFT_MIX,
        work=lambda wc: f"{SFT_DIR}/.work/{wc.template}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/sft_train.py"


rule sft_summary:
    input:
        adapters=expand(f"{SFT_DIR}/{{template}}", template=SFT_TEMPLATES),
        timings=expand(
            f"{SFT_OUT}/timing/train-{{template}}.json", template=SFT_TEMPLATES
        ),
    output:
        summary=f"{SFT_OUT}/summary.json",
        timing=f"{SFT_OUT}/timing/summary.json",
        cost=f"{SFT_OUT}/timing/sft_cost.tsv",
        losses=f"{SFT_OUT}/tables/sft_losses.tsv",
        png=f"{SFT_OUT}/figures/sft_curves.png",
        pdf=f"{SFT_OUT}/figures/sft_curves.pdf",
        prov=prov("sft_summary"),
    log:
        log_path("sft_summary"),
    benchmark:
        bench("sft_summary")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("sft_summary"),
    params:
        templates=SFT_TEMPLATES,
    script:
        "../scripts/sft_summary.py"


PROVENANCE.extend(expand(prov("sft_train-{template}"), template=SFT_TEMPLATES))
PROVENANCE.append(prov("sft_summary"))
PAPER_INPUTS["sft"] = f"{SFT_OUT}/summary.json"
PAPER_TIMINGS["sft"] = f"{SFT_OUT}/timing/summary.json"
