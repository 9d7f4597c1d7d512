# Alignment from the SFT adapter (issue 5): preference pairs (shipped + on-policy), the
# heuristic and learned reward models, DPO (+ beta sweep), ORPO, RLOO with a learned and a
# verifiable reward, and the stage summary. Every policy starts from the same SFT adapter
# and trains under config["alignment"]["train"] (same seed, prompts, steps, batch, lr).
PREF = config["alignment"]
PREF_TEMPLATE = PREF["sft_template"]
SFT_START = f"{RESULTS}/models/sft/{PREF_TEMPLATE}"
ALIGN_DIR = f"{RESULTS}/alignment"
# Checkpoints of unfinished training runs live here (not a declared output, so a killed
# job's checkpoints survive Snakemake's cleanup and the rerun resumes from them).
PREF_WORK = f"{RESULTS}/work/alignment"
REWARD_MODEL = f"{RESULTS}/models/reward/{PREF_TEMPLATE}"


# The main beta first, then the sweep; "0.1" not "0.10000" in paths.
DPO_BETAS = list(
    dict.fromkeys(f"{b:g}" for b in [PREF["dpo"]["beta"], *PREF["dpo"]["beta_sweep"]])
)
DPO_MODELS = {b: f"{RESULTS}/models/dpo/{PREF_TEMPLATE}-beta{b}" for b in DPO_BETAS}
RLOO_MODELS = {
    arm: f"{RESULTS}/models/rloo_{arm}/{PREF_TEMPLATE}" for arm in PREF["rloo"]["arms"]
}
# The aligned policies, each a LoRA adapter loadable with load_model(BASE, adapter_dir);
# the evaluation stage reads this dict (name -> adapter folder).
ALIGNED_MODELS = {
    "dpo": DPO_MODELS[DPO_BETAS[0]],
    "orpo": f"{RESULTS}/models/orpo/{PREF_TEMPLATE}",
    **{f"rloo_{arm}": path for arm, path in RLOO_MODELS.items()},
}


wildcard_constraints:
    beta=r"[0-9.e+-]+",
    arm="rm|verifiable",


rule alignment_sample:
    input:
        sft_train=data_path("sft_train"),
        base=BASE,
        sft=SFT_START,
    output:
        samples=f"{ALIGN_DIR}/onpolicy_samples.jsonl",
        prov=prov("alignment_sample"),
    log:
        log_path("alignment_sample"),
    benchmark:
        bench("alignment_sample")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_sample"),
    params:
        template=PREF_TEMPLATE,
        sampling={k: v for k, v in PREF["onpolicy"].items() if k != "margin"},
        max_prompt_tokens=PREF["max_prompt_tokens"],
    script:
        "../scripts/alignment_sample.py"


rule alignment_pairs:
    input:
        preferences_train=data_path("preferences_train"),
        samples=f"{ALIGN_DIR}/onpolicy_samples.jsonl",
        base=BASE,
        sft=SFT_START,
    output:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        prov=prov("alignment_pairs"),
    log:
        log_path("alignment_pairs"),
    benchmark:
        bench("alignment_pairs")
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        **cpu_resources("alignment_pairs"),
    params:
        template=PREF_TEMPLATE,
        sources=PREF["pair_sources"],
        margin=PREF["onpolicy"]["margin"],
        max_shipped=PREF["max_shipped_pairs"],
        max_prompt_tokens=PREF["max_prompt_tokens"],
    script:
        "../scripts/alignment_pairs.py"


rule alignment_reward:
    input:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        base=BASE,
    output:
        model=directory(REWARD_MODEL),
        prov=prov("alignment_reward"),
    log:
        log_path("alignment_reward"),
    benchmark:
        bench("alignment_reward")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_reward"),
    params:
        reward=PREF["reward"],
        template=PREF_TEMPLATE,
        max_length=PREF["max_length"],
        work=f"{PREF_WORK}/reward",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_reward.py"


rule alignment_reward_eval:
    input:
        model=REWARD_MODEL,
        preferences_test=data_path("preferences_test"),
        base=BASE,
    output:
        accuracy=f"{ALIGN_DIR}/reward_accuracy.json",
        scores=f"{ALIGN_DIR}/reward_scores.jsonl",
        prov=prov("alignment_reward_eval"),
    log:
        log_path("alignment_reward_eval"),
    benchmark:
        bench("alignment_reward_eval")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_reward_eval"),
    params:
        template=PREF_TEMPLATE,
        max_length=PREF["max_length"],
        bootstrap=PREF["bootstrap"],
        max_pairs=PREF["reward"]["eval_pairs"],
    script:
        "../scripts/alignment_reward_eval.py"


rule alignment_dpo:
    input:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        base=BASE,
        sft=SFT_START,
    output:
        model=directory(f"{RESULTS}/models/dpo/{PREF_TEMPLATE}-beta{{beta}}"),
        prov=prov("alignment_dpo-beta{beta}"),
    log:
        log_path("alignment_dpo-beta{beta}"),
    benchmark:
        bench("alignment_dpo-beta{beta}")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_dpo"),
    params:
        train=PREF["train"],
        loss_type=PREF["dpo"]["loss_type"],
        sft_weight=PREF["dpo"]["sft_weight"],
        template=PREF_TEMPLATE,
        max_length=PREF["max_length"],
        work=f"{PREF_WORK}/dpo-beta{{beta}}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_dpo.py"


rule alignment_orpo:
    input:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        base=BASE,
        sft=SFT_START,
    output:
        model=directory(ALIGNED_MODELS["orpo"]),
        prov=prov("alignment_orpo"),
    log:
        log_path("alignment_orpo"),
    benchmark:
        bench("alignment_orpo")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_orpo"),
    params:
        train=PREF["train"],
        beta=PREF["orpo"]["beta"],
        template=PREF_TEMPLATE,
        max_length=PREF["max_length"],
        work=f"{PREF_WORK}/orpo",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_orpo.py"


rule alignment_rloo:
    input:
        # Only the learned-reward arm depends on the reward model.
        unpack(lambda wc: {"reward_model": REWARD_MODEL} if wc.arm == "rm" else {}),
        sft_train=data_path("sft_train"),
        base=BASE,
        sft=SFT_START,
    output:
        model=directory(f"{RESULTS}/models/rloo_{{arm}}/{PREF_TEMPLATE}"),
        prov=prov("alignment_rloo_{arm}"),
    log:
        log_path("alignment_rloo_{arm}"),
    benchmark:
        bench("alignment_rloo_{arm}")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_rloo"),
    params:
        train=PREF["train"],
        template=PREF_TEMPLATE,
        rloo={
            **{k: v for k, v in PREF["rloo"].items() if k != "arms"},
            "prompts": PREF["onpolicy"]["prompts"],
            "max_prompt_tokens": PREF["max_prompt_tokens"],
            "reward_max_length": PREF["max_length"],
        },
        work=f"{PREF_WORK}/rloo_{{arm}}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_rloo.py"


rule alignment_summary:
    input:
        pairs_summary=f"{ALIGN_DIR}/pairs_summary.json",
        reward_accuracy=f"{ALIGN_DIR}/reward_accuracy.json",
        reward_model=REWARD_MODEL,
        dpo=list(DPO_MODELS.values()),
        orpo=ALIGNED_MODELS["orpo"],
        rloo=list(RLOO_MODELS.values()),
    output:
        summary=f"{ALIGN_DIR}/summary.json",
        tables=directory(f"{ALIGN_DIR}/tables"),
        figures=directory(f"{ALIGN_DIR}/figures"),
        prov=prov("alignment_summary"),
    log:
        log_path("alignment_summary"),
    benchmark:
        bench("alignment_summary")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("alignment_summary"),
    params:
        dpo_betas=DPO_BETAS,
        rloo_arms=list(RLOO_MODELS),
        main_beta=DPO_BETAS[0],
        protocol={
            "sft_template": PREF_TEMPLATE,
            "train": PREF["train"],
            "max_length": PREF["max_length"],
            "pair_sources": PREF["pair_sources"],
            "onpolicy_prompts": PREF["onpolicy"]["prompts"],
            "dpo": PREF["dpo"],
        },
    script:
        "../scripts/alignment_summary.py"


PROVENANCE.extend(
    [
        prov("alignment_sample"),
        prov("alignment_pairs"),
        prov("alignment_reward"),
        prov("alignment_reward_eval"),
        *[prov(f"alignment_dpo-beta{b}") for b in DPO_BETAS],
        prov("alignment_orpo"),
        *[prov(f"alignment_rloo_{arm}") for arm in RLOO_MODELS],
        prov("alignment_summary"),
    ]
)
PAPER_INPUTS["alignment"] = f"{ALIGN_DIR}/summary.json"
