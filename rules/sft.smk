# Instruction tuning with LoRA/QLoRA through TRL + PEFT.
# One adapter per template (and per variant of the alignment template, <template>-<variant>) and
# training seed: <root>/seed-{seed}/models/sft/{adapter}/ (a
# standard PEFT folder + card, log); its wall-clock cost in <root>/seed-{seed}/sft/timing/.
# Checkpoints live in .../models/sft/.work/{adapter}/, which is not an output, so a run that
# was stopped (SIGTERM, SIGKILL, SLURM preemption) resumes there when run again.
SFT_DIR = f"{SEED_ROOT}/models/sft"
SFT_OUT = f"{SEED_ROOT}/sft"


SFT_ADAPTERS = sft_adapters()


rule sft_train:
    input:
        base=BASE,
        manifest=f"{RESULTS}/data/manifest.json",
        validation=lambda wc: data_path(sft_settings(wc.adapter)[1]["validation"]),
        mix=lambda wc: list(sft_mix(wc.adapter).values()),
    output:
        adapter=directory(f"{SFT_DIR}/{{adapter}}"),
        timing=f"{SFT_OUT}/timing/train-{{adapter}}.json",
        prov=prov("sft_train-{adapter}-seed{seed}"),
    log:
        log_path("sft_train-{adapter}-seed{seed}"),
    benchmark:
        bench("sft_train-{adapter}-seed{seed}")
    wildcard_constraints:
        adapter="|".join(SFT_ADAPTERS),
    # The variants feed evaluation cells that the judge waits for.
    priority:
        lambda wc: (
            PRIORITY_CHAIN
            if wc.adapter == alignment_template()
            else (
                PRIORITY_BEFORE_JUDGE if wc.adapter not in config["templates"] else 0
            )
        )
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("sft_train"),
    params:
        template=lambda wc: sft_settings(wc.adapter)[0],
        sft=lambda wc: sft_settings(wc.adapter)[1],
        mix=lambda wc: sft_mix(wc.adapter),
        work=f"{SFT_DIR}/.work/{{adapter}}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/sft_train.py"


rule sft_summary:
    input:
        adapters=expand(
            f"{SFT_DIR}/{{adapter}}", adapter=SFT_ADAPTERS, allow_missing=True
        ),
        timings=expand(
            f"{SFT_OUT}/timing/train-{{adapter}}.json",
            adapter=SFT_ADAPTERS,
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
        adapters=SFT_ADAPTERS,
        variants={
            f"{alignment_template()}-{v}": (v, overrides)
            for v, overrides in sft_variants().items()
        },
    script:
        "../scripts/sft_summary.py"


PROVENANCE.extend(
    for_seeds(
        expand(
            prov("sft_train-{adapter}-seed{seed}"),
            adapter=SFT_ADAPTERS,
            allow_missing=True,
        )
    )
)
PROVENANCE.extend(for_seeds(prov("sft_summary-seed{seed}")))
PAPER_INPUTS["sft"] = f"{SFT_OUT}/summary.json"
PAPER_TIMINGS["sft"] = f"{SFT_OUT}/timing/summary.json"
