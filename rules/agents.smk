# Agent ablation (issue 7; rules/agents.smk). One job per model x arm runs the agent loop
# (lmlab.agents.loop) on the same seeded task subset with the same step budget and writes
# results/agents/{model}/{arm}/traces.jsonl + metrics.json + per_task.tsv; agents_summary
# turns them into results/agents/summary.json, tables/ and figures/ (paper section "agents").
from lmlab.agents.loop import ARMS
from lmlab.core.errors import InputError

AGENTS = config["agents"]
AGENTS_DIR = f"{RESULTS}/agents"
AGENTS_SEED = AGENTS["seed"] if AGENTS["seed"] is not None else config["seed"]
# The SFT adapter the agent runs as `sft`: the one the preference stage aligns.
AGENTS_SFT_TEMPLATE = config.get("alignment", {}).get("sft_template", "chat")
# Named model -> adapter folder ("" = the base alone). A model whose training stage is not
# configured is skipped, and the summary records why.
AGENTS_ADAPTERS = {"base": ""}
AGENTS_SKIPPED = {}
if AGENTS_SFT_TEMPLATE in globals().get("SFT_TEMPLATES", []):
    AGENTS_ADAPTERS["sft"] = f"{RESULTS}/models/sft/{AGENTS_SFT_TEMPLATE}"
# The preference stage's policies (dpo, orpo, rloo_rm, rloo_verifiable), when it is configured.
AGENTS_ADAPTERS.update(globals().get("ALIGNED_MODELS", {}))
# "rloo" stands for every RLOO reward arm the preference stage trains.
AGENTS_REQUESTED = list(
    dict.fromkeys(
        n
        for m in AGENTS["models"]
        for n in (
            [k for k in AGENTS_ADAPTERS if k.startswith("rloo_")] or ["rloo"]
            if m == "rloo"
            else [m]
        )
    )
)
for _agents_model in AGENTS_REQUESTED:
    if _agents_model not in AGENTS_ADAPTERS:
        AGENTS_SKIPPED[_agents_model] = (
            f"no adapter: the stage that trains {_agents_model!r} is not configured "
            f"(trained here: {', '.join(k for k in AGENTS_ADAPTERS if k != 'base') or 'none'})"
        )
for _agents_model in ("base", "sft", *globals().get("ALIGNED_MODELS", {})):
    if _agents_model not in AGENTS_REQUESTED:
        AGENTS_SKIPPED[_agents_model] = "not in agents.models in this config"
AGENTS_MODELS = [m for m in AGENTS_REQUESTED if m in AGENTS_ADAPTERS]
AGENTS_ARMS = list(AGENTS["arms"])
for _agents_arm in AGENTS_ARMS:
    if _agents_arm not in ARMS:
        raise InputError(f"config: agents.arms: unknown arm {_agents_arm!r}")
if not AGENTS_MODELS:
    raise InputError(f"config: agents.models: no model can run ({AGENTS_SKIPPED})")
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
AGENTS_RUNS = [(m, a) for m in AGENTS_MODELS for a in AGENTS_ARMS]
# The evaluation matrix lists the agent arms (read by rules/evaluation.smk when it is
# included after this file).
AGENT_MATRIX_ROWS = [
    {"model": m, "arm": a, "path": f"{AGENTS_DIR}/{m}/{a}/metrics.json"}
    for m, a in AGENTS_RUNS
]


rule agents_run:
    input:
        # The adapter folder, for models that have one.
        unpack(
            lambda wc: (
                {"adapter": AGENTS_ADAPTERS[wc.model]}
                if AGENTS_ADAPTERS[wc.model]
                else {}
            )
        ),
        base=BASE,
        tasks=data_path("agent_tasks"),
        kb=data_path("kb"),
    output:
        traces=f"{AGENTS_DIR}/{{model}}/{{arm}}/traces.jsonl",
        metrics=f"{AGENTS_DIR}/{{model}}/{{arm}}/metrics.json",
        per_task=f"{AGENTS_DIR}/{{model}}/{{arm}}/per_task.tsv",
        prov=prov("agents_run-{model}-{arm}"),
    log:
        log_path("agents_run-{model}-{arm}"),
    benchmark:
        bench("agents_run-{model}-{arm}")
    wildcard_constraints:
        model="|".join(AGENTS_MODELS),
        arm="|".join(AGENTS_ARMS),
    conda:
        "../envs/agents.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("agents_run"),
    params:
        adapter=lambda wildcards: AGENTS_ADAPTERS[wildcards.model],
        run=AGENTS_RUN_SETTINGS,
    script:
        "../scripts/agents_run.py"


rule agents_summary:
    input:
        traces=[f"{AGENTS_DIR}/{m}/{a}/traces.jsonl" for m, a in AGENTS_RUNS],
        metrics=[f"{AGENTS_DIR}/{m}/{a}/metrics.json" for m, a in AGENTS_RUNS],
        tasks=data_path("agent_tasks"),
    output:
        summary=f"{AGENTS_DIR}/summary.json",
        ablation=f"{AGENTS_DIR}/tables/agent_ablation.tsv",
        paired=f"{AGENTS_DIR}/tables/agent_paired.tsv",
        categories=f"{AGENTS_DIR}/tables/agent_categories.tsv",
        png=f"{AGENTS_DIR}/figures/agent_ablation.png",
        pdf=f"{AGENTS_DIR}/figures/agent_ablation.pdf",
        prov=prov("agents_summary"),
    log:
        log_path("agents_summary"),
    benchmark:
        bench("agents_summary")
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


PROVENANCE.extend(prov(f"agents_run-{m}-{a}") for m, a in AGENTS_RUNS)
PROVENANCE.append(prov("agents_summary"))
PAPER_INPUTS["agents"] = f"{AGENTS_DIR}/summary.json"
