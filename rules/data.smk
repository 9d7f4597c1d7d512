# Validation of every raw input: one-line errors before any expensive work.
DATASETS = {
    "sft_train": "sft",
    "sft_validation": "sft",
    "sft_test": "sft",
    "preferences_train": "preferences",
    "preferences_test": "preferences",
    "kb": "kb",
    "agent_tasks": "agent_tasks",
}


rule validate_data:
    input:
        **{name: config["data"][name] for name in DATASETS},
        # The generator record is optional: user-supplied data has none.
        **(
            {"generator": config["data"]["generator"]}
            if Path(config["data"]["generator"]).exists()
            else {}
        ),
    output:
        **{name: data_path(name) for name in DATASETS},
        manifest=f"{RESULTS}/data/manifest.json",
        prov=prov("validate_data"),
    log:
        log_path("validate_data"),
    benchmark:
        bench("validate_data")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("validate_data"),
    params:
        kinds=DATASETS,
    script:
        "../scripts/validate_data.py"


PROVENANCE.append(prov("validate_data"))
PAPER_INPUTS["manifest"] = f"{RESULTS}/data/manifest.json"
