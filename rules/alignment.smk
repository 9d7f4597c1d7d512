# Alignment from the SFT adapter: preference pairs (shipped + on-policy), the heuristic and
# learned reward models, DPO (+ beta sweep), ORPO, RLOO with a learned and a verifiable
# reward, and the stage summary. Every policy starts from the same SFT adapter and trains
# under config["alignment"]["train"] (same seed, prompts, steps, batch, lr).
ALIGN = config["alignment"]
ALIGN_TEMPLATE = alignment_template()
SFT_START = sft_adapter(ALIGN_TEMPLATE)
ALIGN_DIR = f"{SEED_ROOT}/alignment"
# Checkpoints of unfinished training runs live here (not a declared output, so a killed
# job's checkpoints survive Snakemake's cleanup and the rerun resumes from them).
ALIGN_WORK = f"{SEED_ROOT}/work/alignment"
DPO_BETAS = dpo_betas()
DPO_MODELS = {b: dpo_adapter(b) for b in DPO_BETAS}
RLOO_MODELS = {arm: rloo_adapter(arm) for arm in ALIGN["rloo"]["arms"]}


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
        prov=prov("alignment_sample-seed{seed}"),
    log:
        log_path("alignment_sample-seed{seed}"),
    benchmark:
        bench("alignment_sample-seed{seed}")
    priority: PRIORITY_CHAIN
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_sample"),
    params:
        template=ALIGN_TEMPLATE,
        sampling={k: v for k, v in ALIGN["onpolicy"].items() if k != "margin"},
        max_prompt_tokens=ALIGN["max_prompt_tokens"],
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
        prov=prov("alignment_pairs-seed{seed}"),
    log:
        log_path("alignment_pairs-seed{seed}"),
    benchmark:
        bench("alignment_pairs-seed{seed}")
    priority: PRIORITY_CHAIN
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        **cpu_resources("alignment_pairs"),
    params:
        template=ALIGN_TEMPLATE,
        sources=ALIGN["pair_sources"],
        margin=ALIGN["onpolicy"]["margin"],
        max_shipped=ALIGN["max_shipped_pairs"],
        max_prompt_tokens=ALIGN["max_prompt_tokens"],
    script:
        "../scripts/alignment_pairs.py"


rule alignment_reward:
    input:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        base=BASE,
    output:
        model=directory(reward_model()),
        timing=f"{ALIGN_DIR}/timing/reward.json",
        prov=prov("alignment_reward-seed{seed}"),
    log:
        log_path("alignment_reward-seed{seed}"),
    benchmark:
        bench("alignment_reward-seed{seed}")
    priority: PRIORITY_CHAIN
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_reward"),
    params:
        reward=ALIGN["reward"],
        template=ALIGN_TEMPLATE,
        max_length=ALIGN["max_length"],
        work=f"{ALIGN_WORK}/reward",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_reward.py"


rule alignment_reward_eval:
    input:
        model=reward_model(),
        preferences_test=data_path("preferences_test"),
        base=BASE,
    output:
        accuracy=f"{ALIGN_DIR}/reward_accuracy.json",
        scores=f"{ALIGN_DIR}/reward_scores.jsonl",
        prov=prov("alignment_reward_eval-seed{seed}"),
    log:
        log_path("alignment_reward_eval-seed{seed}"),
    benchmark:
        bench("alignment_reward_eval-seed{seed}")
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_reward_eval"),
    params:
        template=ALIGN_TEMPLATE,
        max_length=ALIGN["max_length"],
        bootstrap=ALIGN["bootstrap"],
        max_pairs=ALIGN["reward"]["eval_pairs"],
    script:
        "../scripts/alignment_reward_eval.py"


rule alignment_dpo:
    input:
        pairs=f"{ALIGN_DIR}/train_pairs.jsonl",
        summary=f"{ALIGN_DIR}/pairs_summary.json",
        base=BASE,
        sft=SFT_START,
    output:
        model=directory(dpo_adapter("{beta}")),
        timing=f"{ALIGN_DIR}/timing/dpo-beta{{beta}}.json",
        prov=prov("alignment_dpo-beta{beta}-seed{seed}"),
    log:
        log_path("alignment_dpo-beta{beta}-seed{seed}"),
    benchmark:
        bench("alignment_dpo-beta{beta}-seed{seed}")
    priority: PRIORITY_BEFORE_JUDGE
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_dpo"),
    params:
        train=ALIGN["train"],
        loss_type=ALIGN["dpo"]["loss_type"],
        sft_weight=ALIGN["dpo"]["sft_weight"],
        template=ALIGN_TEMPLATE,
        max_length=ALIGN["max_length"],
        work=f"{ALIGN_WORK}/dpo-beta{{beta}}",
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
        model=directory(aligned_models()["orpo"]),
        timing=f"{ALIGN_DIR}/timing/orpo.json",
        prov=prov("alignment_orpo-seed{seed}"),
    log:
        log_path("alignment_orpo-seed{seed}"),
    benchmark:
        bench("alignment_orpo-seed{seed}")
    priority: PRIORITY_BEFORE_JUDGE
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_orpo"),
    params:
        train=ALIGN["train"],
        beta=ALIGN["orpo"]["beta"],
        template=ALIGN_TEMPLATE,
        max_length=ALIGN["max_length"],
        work=f"{ALIGN_WORK}/orpo",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_orpo.py"


rule alignment_rloo:
    input:
        # Only the learned-reward arm depends on the reward model.
        unpack(
            lambda wc: (
                {"reward_model": at_seed(reward_model(), wc.seed)}
                if wc.arm == "rm"
                else {}
            )
        ),
        sft_train=data_path("sft_train"),
        base=BASE,
        sft=SFT_START,
    output:
        model=directory(rloo_adapter("{arm}")),
        timing=f"{ALIGN_DIR}/timing/rloo_{{arm}}.json",
        prov=prov("alignment_rloo_{arm}-seed{seed}"),
    log:
        log_path("alignment_rloo_{arm}-seed{seed}"),
    benchmark:
        bench("alignment_rloo_{arm}-seed{seed}")
    priority: PRIORITY_CHAIN
    conda:
        "../envs/train.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("alignment_rloo"),
    params:
        train=ALIGN["train"],
        template=ALIGN_TEMPLATE,
        rloo={
            **{k: v for k, v in ALIGN["rloo"].items() if k != "arms"},
            "prompts": ALIGN["onpolicy"]["prompts"],
            "max_prompt_tokens": ALIGN["max_prompt_tokens"],
            "reward_max_length": ALIGN["max_length"],
        },
        work=f"{ALIGN_WORK}/rloo_{{arm}}",
        gpus=config["hpc"]["gpus"],
    script:
        "../scripts/alignment_rloo.py"


# {model folder: its timing file} of every model the summary reads.
ALIGN_TIMINGS = {
    reward_model(): f"{ALIGN_DIR}/timing/reward.json",
    **{path: f"{ALIGN_DIR}/timing/dpo-beta{b}.json" for b, path in DPO_MODELS.items()},
    aligned_models()["orpo"]: f"{ALIGN_DIR}/timing/orpo.json",
    **{
        path: f"{ALIGN_DIR}/timing/rloo_{arm}.json" for arm, path in RLOO_MODELS.items()
    },
}


rule alignment_summary:
    input:
        pairs_summary=f"{ALIGN_DIR}/pairs_summary.json",
        reward_accuracy=f"{ALIGN_DIR}/reward_accuracy.json",
        reward_model=reward_model(),
        dpo=list(DPO_MODELS.values()),
        orpo=aligned_models()["orpo"],
        rloo=list(RLOO_MODELS.values()),
        timings=list(ALIGN_TIMINGS.values()),
    output:
        summary=f"{ALIGN_DIR}/summary.json",
        timing=f"{ALIGN_DIR}/timing/summary.json",
        tables=directory(f"{ALIGN_DIR}/tables"),
        figures=directory(f"{ALIGN_DIR}/figures"),
        prov=prov("alignment_summary-seed{seed}"),
    log:
        log_path("alignment_summary-seed{seed}"),
    benchmark:
        bench("alignment_summary-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("alignment_summary"),
    params:
        dpo_betas=DPO_BETAS,
        rloo_arms=list(RLOO_MODELS),
        main_beta=DPO_BETAS[0],
        timed_models=lambda wc: at_seed(list(ALIGN_TIMINGS), wc.seed),
        protocol={
            "sft_template": ALIGN_TEMPLATE,
            "train": ALIGN["train"],
            "max_length": ALIGN["max_length"],
            "pair_sources": ALIGN["pair_sources"],
            "onpolicy_prompts": ALIGN["onpolicy"]["prompts"],
            "dpo": ALIGN["dpo"],
        },
    script:
        "../scripts/alignment_summary.py"


PROVENANCE.extend(
    for_seeds(
        [
            prov("alignment_sample-seed{seed}"),
            prov("alignment_pairs-seed{seed}"),
            prov("alignment_reward-seed{seed}"),
            prov("alignment_reward_eval-seed{seed}"),
            *[prov(f"alignment_dpo-beta{b}-seed{{seed}}") for b in DPO_BETAS],
            prov("alignment_orpo-seed{seed}"),
            *[prov(f"alignment_rloo_{arm}-seed{{seed}}") for arm in RLOO_MODELS],
            prov("alignment_summary-seed{seed}"),
        ]
    )
)
PAPER_INPUTS["alignment"] = f"{ALIGN_DIR}/summary.json"
PAPER_TIMINGS["alignment"] = f"{ALIGN_DIR}/timing/summary.json"
