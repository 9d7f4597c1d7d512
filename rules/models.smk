# The base model as a standard Hugging Face folder (safetensors + tokenizer + base_model.json).


rule models_prepare:
    input:
        # Data are validated first, so bad input fails before the (slow) conversion.
        manifest=f"{RESULTS}/data/manifest.json",
    output:
        model=directory(BASE),
        prov=prov(f"models_prepare-{config['base_model']['name']}"),
    log:
        log_path(f"models_prepare-{config['base_model']['name']}"),
    benchmark:
        bench(f"models_prepare-{config['base_model']['name']}")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **cpu_resources("models_prepare"),
    params:
        source=config["base_model"]["source"],
        tiny=config["base_model"]["tiny"],
    script:
        "../scripts/models_prepare.py"


PROVENANCE.append(prov(f"models_prepare-{config['base_model']['name']}"))
PAPER_INPUTS["base_model"] = BASE
