# Agent ablation: one job per model x training seed loads the model once and runs every arm
# of the agent loop on the same seeded task subset with the same step budget; it writes
# <root>/seed-{seed}/agents/{model}/{arm}/traces.jsonl + metrics.json + per_task.tsv;
# agents_summary turns them into .../agents/summary.json, tables/ and figures/ (paper section
# "agents").
AGENTS = config["agents"]
AGENTS_DIR = f"{SEED_ROOT}/agents"
AGENTS_SEED = AGENTS["seed"] if AGENTS["seed"] is not None else config["seed"]
# The agents run the SFT adapter that the alignment stage aligns.
AGENTS_SFT_TEMPLATE = alignment_template()
AGENTS_ADAPTERS = trained_models(AGENTS_SFT_TEMPLATE)
AGENTS_MODELS, AGENTS_SKIPPED = agent_models()
AGENTS_ARMS = list(AGENTS["arms"])
AGENTS_RUN_SETTINGS = {
    "max_tasks": AGENTS["max_tasks"],
    "min_repeats": AGENTS["min_repeats"],
    "max_steps": AGENTS["max_steps"],
    "batch_size": AGENTS["batch_size"],
    "max_new_tokens": AGENTS["max_new_tokens"],
    "prompt_format": AGENTS["prompt_format"],
    "max_input_tokens": AGENTS["max_input_tokens"] or None,
    "seed": AGENTS_SEED,
}
AGENTS_RUNS = agent_runs()


rule agents_run:
    input:
        # The adapter folder, for models that have one.
        unpack(
            lambda wc: (
                {"adapter": at_seed(AGENTS_ADAPTERS[wc.model], wc.seed)}
                if AGENTS_ADAPTERS[wc.model]
                else {}
            )
        ),
        base=BASE,
        tasks=data_path("agent_tasks"),
        kb=data_path("kb"),
    output:
        # One file of each kind per arm, in AGENTS_ARMS order.
        traces=per_arm(f"{AGENTS_DIR}/{{model}}/{{arm}}/traces.jsonl"),
        metrics=per_arm(f"{AGENTS_DIR}/{{model}}/{{arm}}/metrics.json"),
        per_task=per_arm(f"{AGENTS_DIR}/{{model}}/{{arm}}/per_task.tsv"),
        timing=per_arm(f"{AGENTS_DIR}/timing/{{model}}/{{arm}}.json"),
        prov=prov("agents_run-{model}-seed{seed}"),
    log:
        log_path("agents_run-{model}-seed{seed}"),
    benchmark:
        bench("agents_run-{model}-seed{seed}")
    wildcard_constraints:
        model="|".join(AGENTS_MODELS),
    conda:
        "../envs/agents.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("agents_run"),
    params:
        adapter=lambda wc: at_seed(AGENTS_ADAPTERS[wc.model], wc.seed),
        arms=AGENTS_ARMS,
        run=AGENTS_RUN_SETTINGS,
    script:
        "../scripts/agents_run.py"


rule agents_summary:
    input:
        traces=[f"{AGENTS_DIR}/{m}/{a}/traces.jsonl" for m, a in AGENTS_RUNS],
        metrics=[f"{AGENTS_DIR}/{m}/{a}/metrics.json" for m, a in AGENTS_RUNS],
        timings=[f"{AGENTS_DIR}/timing/{m}/{a}.json" for m, a in AGENTS_RUNS],
        tasks=data_path("agent_tasks"),
    output:
        summary=f"{AGENTS_DIR}/summary.json",
        timing=f"{AGENTS_DIR}/timing/summary.json",
        latency=f"{AGENTS_DIR}/timing/agent_latency.tsv",
        ablation=f"{AGENTS_DIR}/tables/agent_ablation.tsv",
        paired=f"{AGENTS_DIR}/tables/agent_paired.tsv",
        categories=f"{AGENTS_DIR}/tables/agent_categories.tsv",
        png=f"{AGENTS_DIR}/figures/agent_ablation.png",
        pdf=f"{AGENTS_DIR}/figures/agent_ablation.pdf",
        prov=prov("agents_summary-seed{seed}"),
    log:
        log_path("agents_summary-seed{seed}"),
    benchmark:
        bench("agents_summary-seed{seed}")
    conda:
        "../envs/agents.yaml"
    threads: 1
    resources:
        **cpu_resources("agents_summary"),
    params:
        runs=[{"model": m, "arm": a} for m, a in AGENTS_RUNS],
        models=AGENTS_MODELS,
        arms=AGENTS_ARMS,
        skipped=AGENTS_SKIPPED,
        n_resamples=AGENTS["n_resamples"],
        primary=AGENTS["primary"],
        seed=AGENTS_SEED,
        settings={
            **AGENTS_RUN_SETTINGS,
            "models": AGENTS["models"],
            "arms": AGENTS_ARMS,
            "sft_template": AGENTS_SFT_TEMPLATE,
            "base_model": config["base_model"]["name"],
        },
    script:
        "../scripts/agents_summary.py"


PROVENANCE.extend(
    for_seeds(
        [
            *[prov(f"agents_run-{m}-seed{{seed}}") for m in AGENTS_MODELS],
            prov("agents_summary-seed{seed}"),
        ]
    )
)
PAPER_INPUTS["agents"] = f"{AGENTS_DIR}/summary.json"
PAPER_TIMINGS["agents"] = f"{AGENTS_DIR}/timing/summary.json"
