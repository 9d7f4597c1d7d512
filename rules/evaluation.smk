# Experiment matrix, metrics, win rates, statistics, errors; once per training seed, on one
# shared test set (<root>/evaluation/test_items.jsonl). Under <root>/seed-{seed}/evaluation/:
# cells generations/{model}/{prompt}/ctx{context}.jsonl -> metrics/... -> stats/ -> summary.json
# (paper section "evaluation"); errors/ (section "errors"); the blind human-evaluation sheet
# human_eval/.
from lmlab.evaluation.design import (
    baseline_of,
    cell_id,
    design_cells,
    judge_status,
    reference_cell,
    resolve_models,
    resolve_prompt,
)

EVAL = config["evaluation"]
EVAL_DIR = f"{SEED_ROOT}/evaluation"
# The items are fixed before any model is scored, and the same for every seed.
EVAL_ITEMS = f"{RESULTS}/evaluation/test_items.jsonl"
GEN_DIR = f"{EVAL_DIR}/generations"
METRICS_DIR = f"{EVAL_DIR}/metrics"
STATS_DIR = f"{EVAL_DIR}/stats"
WIN_DIR = f"{EVAL_DIR}/winrates"
ERRORS_DIR = f"{EVAL_DIR}/errors"
HUMAN_DIR = f"{EVAL_DIR}/human_eval"

# The SFT adapter under evaluation (and the template the `sft` prompts resolve to): by
# default the one the alignment stage aligns, so every trained model is prompted the way it
# was trained.
EVAL_SFT_TEMPLATE = (
    EVAL["sft_template"] if EVAL["sft_template"] != "auto" else alignment_template()
)
# Named models -> adapter folder ("" = the base alone).
EVAL_AVAILABLE = trained_models(EVAL_SFT_TEMPLATE)
EVAL_MATRIX_MODELS, EVAL_MODELS = resolve_models(EVAL["models"], EVAL_AVAILABLE)
EVAL_PROMPTS = {
    name: resolve_prompt(spec, EVAL_SFT_TEMPLATE)
    for name, spec in EVAL["prompts"].items()
}
EVAL_CONTEXTS = [int(c) for c in EVAL["contexts"]]
EVAL_REF = reference_cell(EVAL_MODELS, EVAL_PROMPTS, EVAL_CONTEXTS, EVAL["reference"])
EVAL_CELLS = design_cells(
    EVAL_MODELS, EVAL_PROMPTS, EVAL_CONTEXTS, EVAL["design"], EVAL_REF
)
EVAL_CELL_IDS = [cell_id(c) for c in EVAL_CELLS]
# Wall-clock seconds of each cell's generation, kept apart from the generations (lmlab.core.timing).
EVAL_TIMING = f"{EVAL_DIR}/timing"
# Models on the model axis (reference prompt and context): NLL, win rates, human sheet.
EVAL_AXIS_MODELS = [
    c["model"]
    for c in EVAL_CELLS
    if c["prompt"] == EVAL_REF["prompt"] and c["context"] == EVAL_REF["context"]
]


# Generations of the reference prompt and context, per model.
EVAL_REF_GEN = (
    f"{GEN_DIR}/{{model}}/{EVAL_REF['prompt']}/ctx{EVAL_REF['context']}.jsonl"
)


# Judge: the learned reward model of the alignment stage, unless judging is turned off.
EVAL_REWARD = reward_model() if EVAL["judge"]["enabled"] else None
EVAL_JUDGE_TEMPLATE = alignment_template()
EVAL_PAIRS = (
    [
        (m, baseline_of(m))
        for m in EVAL_AXIS_MODELS
        if baseline_of(m) in EVAL_AXIS_MODELS
    ]
    if EVAL_REWARD
    else []
)
# Models that take part in a judged pair, in matrix order.
EVAL_JUDGED = [m for m in EVAL_AXIS_MODELS if any(m in pair for pair in EVAL_PAIRS)]
# The agent arms, listed in the matrix beside the evaluation cells.
EVAL_AGENT_ROWS = [
    {"model": m, "arm": a, "path": agent_metrics(m, a)} for m, a in agent_runs()
]
# Filled human-evaluation sheets (none by default).
EVAL_SHEETS = EVAL["human_eval"]["sheets"]


rule evaluation_testset:
    input:
        sft_test=data_path("sft_test"),
    output:
        test_items=EVAL_ITEMS,
        prov=prov("evaluation_testset"),
    log:
        log_path("evaluation_testset"),
    benchmark:
        bench("evaluation_testset")
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_testset"),
    params:
        max_items_per_task=EVAL["max_items_per_task"],
        max_items_by_task=EVAL["max_items_by_task"],
    script:
        "../scripts/evaluation_testset.py"


rule evaluation_generate:
    input:
        unpack(
            lambda wc: (
                {"adapter": at_seed(EVAL_AVAILABLE[wc.model], wc.seed)}
                if EVAL_AVAILABLE[wc.model]
                else {}
            )
        ),
        test_items=EVAL_ITEMS,
        base=BASE,
    output:
        generations=f"{GEN_DIR}/{{model}}/{{prompt}}/ctx{{context}}.jsonl",
        timing=f"{EVAL_TIMING}/generations/{{model}}/{{prompt}}/ctx{{context}}.json",
        prov=prov("evaluation_generate-{model}-{prompt}-ctx{context}-seed{seed}"),
    log:
        log_path("evaluation_generate-{model}-{prompt}-ctx{context}-seed{seed}"),
    benchmark:
        bench("evaluation_generate-{model}-{prompt}-ctx{context}-seed{seed}")
    wildcard_constraints:
        model="|".join(EVAL_MODELS),
        prompt="|".join(EVAL_PROMPTS),
        context=r"\d+",
    priority:
        lambda wc: (
            PRIORITY_BEFORE_JUDGE
            if wc.model in EVAL_JUDGED
            and wc.prompt == EVAL_REF["prompt"]
            and int(wc.context) == EVAL_REF["context"]
            else 0
        )
    conda:
        "../envs/eval.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("evaluation_generate"),
    params:
        template=lambda wc: EVAL_PROMPTS[wc.prompt][0],
        constrained=lambda wc: EVAL_PROMPTS[wc.prompt][1],
        max_new_tokens=EVAL["max_new_tokens"],
        batch_size=EVAL["batch_size"],
    script:
        "../scripts/evaluation_generate.py"


rule evaluation_score:
    input:
        generations=f"{GEN_DIR}/{{model}}/{{prompt}}/ctx{{context}}.jsonl",
    output:
        per_item=f"{METRICS_DIR}/{{model}}/{{prompt}}/ctx{{context}}.jsonl",
        aggregate=f"{METRICS_DIR}/{{model}}/{{prompt}}/ctx{{context}}.tsv",
        prov=prov("evaluation_score-{model}-{prompt}-ctx{context}-seed{seed}"),
    log:
        log_path("evaluation_score-{model}-{prompt}-ctx{context}-seed{seed}"),
    benchmark:
        bench("evaluation_score-{model}-{prompt}-ctx{context}-seed{seed}")
    wildcard_constraints:
        model="|".join(EVAL_MODELS),
        prompt="|".join(EVAL_PROMPTS),
        context=r"\d+",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_score"),
    params:
        rouge_threshold=EVAL["rouge_threshold"],
    script:
        "../scripts/evaluation_score.py"


rule evaluation_judge:
    input:
        test_items=EVAL_ITEMS,
        generations=expand(EVAL_REF_GEN, model=EVAL_JUDGED, allow_missing=True),
        base=BASE,
        reward_model=EVAL_REWARD or [],
    output:
        scores=f"{WIN_DIR}/reward_scores.jsonl",
        results=[f"{WIN_DIR}/{a}_vs_{b}.json" for a, b in EVAL_PAIRS],
        per_item=[f"{WIN_DIR}/{a}_vs_{b}.jsonl" for a, b in EVAL_PAIRS],
        prov=prov("evaluation_judge-seed{seed}"),
    log:
        log_path("evaluation_judge-seed{seed}"),
    benchmark:
        bench("evaluation_judge-seed{seed}")
    priority: PRIORITY_BEFORE_JUDGE
    conda:
        "../envs/eval.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("evaluation_judge"),
    params:
        models=EVAL_JUDGED,
        pairs=EVAL_PAIRS,
        template=EVAL_JUDGE_TEMPLATE,
        max_length=EVAL["judge"]["max_length"],
        batch_size=EVAL["judge"]["batch_size"],
        n_resamples=EVAL["n_resamples"],
        confidence=EVAL["confidence"],
    script:
        "../scripts/evaluation_judge.py"


rule evaluation_matrix:
    input:
        # The design's cells run first, so "ran" is true for every one of them.
        generations=[f"{GEN_DIR}/{c}.jsonl" for c in EVAL_CELL_IDS],
        agents=[row["path"] for row in EVAL_AGENT_ROWS],
    output:
        matrix=f"{EVAL_DIR}/matrix.tsv",
        prov=prov("evaluation_matrix-seed{seed}"),
    log:
        log_path("evaluation_matrix-seed{seed}"),
    benchmark:
        bench("evaluation_matrix-seed{seed}")
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_matrix"),
    params:
        all_models=EVAL_MATRIX_MODELS,
        models=EVAL_MODELS,
        prompts=list(EVAL_PROMPTS),
        contexts=EVAL_CONTEXTS,
        design=EVAL["design"],
        reference=EVAL_REF,
        # The folder itself: the matrix also reports off-design cells, which are not inputs.
        generations_dir=lambda wc: at_seed(GEN_DIR, wc.seed),
        agent_arms=lambda wc: [
            {**row, "path": at_seed(row["path"], wc.seed)} for row in EVAL_AGENT_ROWS
        ],
    script:
        "../scripts/evaluation_matrix.py"


rule evaluation_stats:
    input:
        metrics=[f"{METRICS_DIR}/{c}.jsonl" for c in EVAL_CELL_IDS],
        # Gold NLL: written with each cell's generations, read on the model axis.
        nll=expand(EVAL_REF_GEN, model=EVAL_AXIS_MODELS, allow_missing=True),
        winrates=[f"{WIN_DIR}/{a}_vs_{b}.json" for a, b in EVAL_PAIRS],
    output:
        intervals=f"{STATS_DIR}/intervals.tsv",
        comparisons=f"{STATS_DIR}/comparisons.tsv",
        nll=f"{STATS_DIR}/nll.tsv",
        nll_comparisons=f"{STATS_DIR}/nll_comparisons.tsv",
        winrates=f"{STATS_DIR}/winrates.tsv",
        stats=f"{STATS_DIR}/stats.json",
        prov=prov("evaluation_stats-seed{seed}"),
    log:
        log_path("evaluation_stats-seed{seed}"),
    benchmark:
        bench("evaluation_stats-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_stats"),
    params:
        cells=EVAL_CELLS,
        nll_models=EVAL_AXIS_MODELS,
        design=EVAL["design"],
        reference=EVAL_REF,
        n_resamples=EVAL["n_resamples"],
        confidence=EVAL["confidence"],
        alpha=EVAL["alpha"],
        judge_status=lambda wc: judge_status(
            at_seed(EVAL_REWARD, wc.seed) if EVAL_REWARD else None
        ),
        primary=EVAL["primary"],
    script:
        "../scripts/evaluation_stats.py"


rule evaluation_summary:
    input:
        stats=f"{STATS_DIR}/stats.json",
        matrix=f"{EVAL_DIR}/matrix.tsv",
        test_items=EVAL_ITEMS,
        human_key=f"{HUMAN_DIR}/key.csv",
        human_agreement=f"{HUMAN_DIR}/agreement.json" if EVAL_SHEETS else [],
        timings=[f"{EVAL_TIMING}/generations/{c}.json" for c in EVAL_CELL_IDS],
    output:
        summary=f"{EVAL_DIR}/summary.json",
        timing=f"{EVAL_TIMING}/summary.json",
        timing_table=f"{EVAL_TIMING}/evaluation_generation_time.tsv",
        tables=expand(
            f"{EVAL_DIR}/tables/evaluation_{{name}}.tsv",
            name=[
                "matrix",
                "metrics",
                "secondary",
                "cells",
                "comparisons",
                "comparisons_by_task",
                "winrates",
                "nll",
            ],
            allow_missing=True,
        ),
        figures=expand(
            f"{EVAL_DIR}/figures/evaluation_{{name}}.{{ext}}",
            name=["primary_by_model", "factors"],
            ext=["png", "pdf"],
            allow_missing=True,
        ),
        prov=prov("evaluation_summary-seed{seed}"),
    log:
        log_path("evaluation_summary-seed{seed}"),
    benchmark:
        bench("evaluation_summary-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_summary"),
    params:
        prompts=EVAL_PROMPTS,
        sft_template=EVAL_SFT_TEMPLATE,
        cells=EVAL_CELL_IDS,
    script:
        "../scripts/evaluation_summary.py"


rule evaluation_errors:
    input:
        generations=[f"{GEN_DIR}/{c}.jsonl" for c in EVAL_CELL_IDS],
        metrics=[f"{METRICS_DIR}/{c}.jsonl" for c in EVAL_CELL_IDS],
    output:
        table=f"{ERRORS_DIR}/error_table.tsv",
        summary=f"{ERRORS_DIR}/summary.json",
        tables=expand(
            f"{ERRORS_DIR}/tables/errors_{{name}}.tsv",
            name=["counts", "by_cell", "examples"],
            allow_missing=True,
        ),
        prov=prov("evaluation_errors-seed{seed}"),
    log:
        log_path("evaluation_errors-seed{seed}"),
    benchmark:
        bench("evaluation_errors-seed{seed}")
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_errors"),
    params:
        cells=EVAL_CELLS,
        reference=EVAL_REF,
        overlong_factor=EVAL["errors"]["overlong_factor"],
        overlong_slack_words=EVAL["errors"]["overlong_slack_words"],
        examples_per_type=EVAL["errors"]["examples_per_type"],
    script:
        "../scripts/evaluation_errors.py"


rule evaluation_human_sheet:
    input:
        test_items=EVAL_ITEMS,
        generations=expand(EVAL_REF_GEN, model=EVAL_AXIS_MODELS, allow_missing=True),
        rubric=EVAL["human_eval"]["rubric"],
    output:
        sheet=f"{HUMAN_DIR}/sheet.csv",
        key=f"{HUMAN_DIR}/key.csv",
        prov=prov("evaluation_human_sheet-seed{seed}"),
    log:
        log_path("evaluation_human_sheet-seed{seed}"),
    benchmark:
        bench("evaluation_human_sheet-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_human_sheet"),
    params:
        models=EVAL_AXIS_MODELS,
        n_items=EVAL["human_eval"]["items"],
    script:
        "../scripts/evaluation_human_sheet.py"


rule evaluation_human_agreement:
    input:
        sheets=EVAL_SHEETS,
        key=f"{HUMAN_DIR}/key.csv",
        rubric=EVAL["human_eval"]["rubric"],
    output:
        agreement=f"{HUMAN_DIR}/agreement.json",
        pairs=f"{HUMAN_DIR}/agreement.tsv",
        prov=prov("evaluation_human_agreement-seed{seed}"),
    log:
        log_path("evaluation_human_agreement-seed{seed}"),
    benchmark:
        bench("evaluation_human_agreement-seed{seed}")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("evaluation_human_agreement"),
    script:
        "../scripts/evaluation_human_agreement.py"


PROVENANCE.append(prov("evaluation_testset"))
PROVENANCE.extend(
    for_seeds(
        [
            *[
                prov(
                    f"evaluation_{step}-{c['model']}-{c['prompt']}-ctx{c['context']}-seed{{seed}}"
                )
                for c in EVAL_CELLS
                for step in ("generate", "score")
            ],
            *([prov("evaluation_judge-seed{seed}")] if EVAL_PAIRS else []),
            prov("evaluation_matrix-seed{seed}"),
            prov("evaluation_stats-seed{seed}"),
            prov("evaluation_summary-seed{seed}"),
            prov("evaluation_errors-seed{seed}"),
            prov("evaluation_human_sheet-seed{seed}"),
            *([prov("evaluation_human_agreement-seed{seed}")] if EVAL_SHEETS else []),
        ]
    )
)
PAPER_INPUTS["evaluation"] = f"{EVAL_DIR}/summary.json"
PAPER_TIMINGS["evaluation"] = f"{EVAL_TIMING}/summary.json"
PAPER_INPUTS["errors"] = f"{ERRORS_DIR}/summary.json"
ALL_TARGETS.extend(for_seeds([f"{EVAL_DIR}/matrix.tsv", f"{HUMAN_DIR}/sheet.csv"]))
