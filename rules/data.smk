# Validation of every raw input: one-line errors before any expensive work.
from lmlab.data.sources import source_path

DATASETS = {
    "sft_train": "sft",
    "sft_validation": "sft",
    "sft_test": "sft",
    "preferences_train": "preferences",
    "preferences_test": "preferences",
    "kb": "kb",
    "agent_tasks": "agent_tasks",
}


rule data_validate:
    input:
        # Local sources (JSONL, parquet, arrow, save_to_disk folder); a hub dataset has no file.
        **{
            name: source_path(config["data"][name])
            for name in DATASETS
            if source_path(config["data"][name]) is not None
        },
        # The generator record is optional: user-supplied data has none.
        **(
            {"generator": config["data"]["generator"]}
            if Path(config["data"]["generator"]).exists()
            else {}
        ),
    output:
        **{name: data_path(name) for name in DATASETS},
        manifest=f"{RESULTS}/data/manifest.json",
        prov=prov("data_validate"),
    log:
        log_path("data_validate"),
    benchmark:
        bench("data_validate")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("data_validate"),
    params:
        kinds=DATASETS,
        sources={name: config["data"][name] for name in DATASETS},
    script:
        "../scripts/data_validate.py"


PROVENANCE.append(prov("data_validate"))
PAPER_INPUTS["manifest"] = f"{RESULTS}/data/manifest.json"
