# The base model as a standard Hugging Face folder (safetensors + tokenizer + base_model.json).


rule prepare_base:
    input:
        # Data are validated first, so bad input fails before the (slow) conversion.
        manifest=f"{RESULTS}/data/manifest.json",
    output:
        model=directory(BASE),
        prov=prov(f"prepare_base-{config['base_model']['name']}"),
    log:
        log_path(f"prepare_base-{config['base_model']['name']}"),
    benchmark:
        bench(f"prepare_base-{config['base_model']['name']}")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **cpu_resources("prepare_base"),
    params:
        source=config["base_model"]["source"],
        tiny=config["base_model"]["tiny"],
    script:
        "../scripts/prepare_base.py"


PROVENANCE.append(prov(f"prepare_base-{config['base_model']['name']}"))
PAPER_INPUTS["base_model"] = BASE
