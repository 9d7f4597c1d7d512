"""The agents stage's statistics over per-task rows: every rate of the ablation table with
its interval (`arm_intervals`: Wilson for shares of tasks and of calls, a cluster bootstrap for counts, a
repeated question counted with its original), and paired success comparisons of arms with
their test, Holm's correction per family, verdict and minimum detectable effect
(`paired_comparisons`)."""

from lmlab.core.stats import decide, holm, mde_paired_binary, mean_ci, paired_proportion_difference, proportion_ci

# Pooled rates of the ablation table: (column, numerator, denominator) of agent_metrics'
# per-task rows; rows without a denominator (e.g. no tool calls) do not count toward n.
RATIO_METRICS = (
    ("tool_precision", "n_matched_calls", "n_calls"),
    ("tool_recall", "n_matched_calls", "n_gold_calls"),
    ("argument_accuracy", "n_arguments_correct", "n_matched_calls"),
    ("invented_tool_rate", "n_invented_calls", "n_calls"),
    ("unnecessary_call_rate", "n_unnecessary_calls", "n_calls"),
    ("format_error_rate", "n_format_errors", "n_protocol_steps"),
)
# Tool precision, recall and argument accuracy leave out tasks answered from episodic
# memory (they made no tool decisions), as agent_metrics does.
TOOL_SCORED_ONLY = ("tool_precision", "tool_recall", "argument_accuracy")


def pooled_rate(numerators, denominators, n_resamples=2000, confidence=0.95, seed=0):
    """{estimate, low, high, n, denominator, method}: sum(num)/sum(den) over tasks with a
    denominator, a share of calls (or turns): the Wilson interval of the pooled events with
    the design effect of their tasks (a task's calls are not independent of each other), so
    it never collapses at 0 or 1. `n` counts tasks. None when no task has a denominator.
    n_resamples and seed are unused (no resampling) and kept for a uniform signature."""
    pairs = [(int(a), int(b)) for a, b in zip(numerators, denominators) if b]
    if not pairs:
        return None
    events, clusters = [], []
    for task, (num, den) in enumerate(pairs):
        events += [1.0] * num + [0.0] * (den - num)
        clusters += [task] * den
    result = proportion_ci(events, confidence, clusters=clusters)
    return {**{k: result[k] for k in ("estimate", "low", "high", "method")}, "n": len(pairs),
            "denominator": len(events)}


def task_interval(values, clusters, n_resamples=2000, confidence=0.95, seed=0):
    """lmlab.core.stats.mean_ci over tasks, a repeated question in its original's cluster
    (Wilson with the design effect for 0/1 outcomes, a cluster bootstrap otherwise); None
    for an empty sample."""
    kept = [(float(v), c) for v, c in zip(values, clusters) if v is not None]
    if not kept:
        return None
    values, clusters = zip(*kept)
    return mean_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed, clusters=list(clusters))


def arm_intervals(rows, clusters, n_resamples=2000, confidence=0.95, seed=0):
    """Every rate of the ablation table for one model x arm, with 95% intervals and n.
    `clusters` maps a task id to its cluster (the original's id for a repeat)."""
    kw = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)

    def interval(key, selected=None):
        chosen = rows if selected is None else selected
        return task_interval([row[key] for row in chosen], [clusters[row["id"]] for row in chosen], **kw)

    tool_rows = [row for row in rows if row["tool_scored"]]
    out = {
        "n_tasks": len(rows),
        "success": interval("success"),
        "contains_gold": interval("contains_gold"),
        "hallucination_rate": interval("hallucination"),
        "mean_steps": interval("n_steps"),
    }
    for name, numerator, denominator in RATIO_METRICS:
        scored = tool_rows if name in TOOL_SCORED_ONLY else rows
        out[name] = pooled_rate([row[numerator] for row in scored], [row[denominator] for row in scored], **kw)
    out["stopped_by"] = {reason: sum(row["stopped_by"] == reason for row in rows) for reason in ("final", "budget", "format")}
    out["success_by_category"] = {
        category: interval("success", [row for row in rows if row["category"] == category])
        for category in sorted({row["category"] for row in rows})
    }
    out["n_calls"] = sum(row["n_calls"] for row in rows)
    return out
# ---------------------------------------------------------------------------------------
# paired comparisons

# (name, treatment arm, baseline arm, what it isolates). Difference = treatment - baseline.
COMPARISONS = (
    ("tools_vs_llm_only", "tools", "llm_only", "adding tools"),
    ("memory_vs_tools", "tools_memory", "tools", "adding episodic memory"),
    ("planning_vs_memory", "tools_memory_planning", "tools_memory", "adding LLM planning"),
    ("summary_vs_episodic_memory", "tools_summary_memory", "tools_memory", "summary instead of episodic memory"),
    (
        "heuristic_vs_llm_planning",
        "tools_memory_heuristic_plan",
        "tools_memory_planning",
        "heuristic instead of LLM planning",
    ),
)


def paired_comparisons(rows_by_run, models, clusters, primary=(), confidence=0.95, alpha=0.05):
    """Paired success comparisons of arms on the same tasks, per model.

    rows_by_run: {(model, arm): per-task rows}; clusters: {task id: cluster}. For each model
    and each entry of COMPARISONS whose two arms ran: the difference in success (treatment -
    baseline) with Newcombe's interval and the mid-p sign-flip test over clusters
    (lmlab.core.stats.paired_proportion_difference: a repeat is resampled with its original),
    n10/n01 as in McNemar. `primary` lists "model/comparison" names: those form the primary
    Holm family, every other comparison the exploratory one. Each row gets its family's
    Holm-adjusted p, the verdict of lmlab.core.stats.decide and its minimum detectable effect
    at 80% power (exact power of the mid-p test at alpha / family size, Holm's strictest step, on the
    effective number of tasks n / design effect). Different task sets are an error."""
    out = []
    for model in models:
        for name, treatment, baseline, isolates in COMPARISONS:
            if (model, treatment) not in rows_by_run or (model, baseline) not in rows_by_run:
                continue
            a = {row["id"]: bool(row["success"]) for row in rows_by_run[(model, treatment)]}
            b = {row["id"]: bool(row["success"]) for row in rows_by_run[(model, baseline)]}
            if set(a) != set(b):
                raise ValueError(f"{model}: arms {treatment} and {baseline} ran on different tasks")
            ids = sorted(a)
            test = paired_proportion_difference([a[i] for i in ids], [b[i] for i in ids], confidence,
                                                clusters=[clusters[i] for i in ids])
            out.append({
                "comparison": name, "model": model, "treatment": treatment, "baseline": baseline,
                "isolates": isolates, "n": len(ids), "clusters": test["clusters"],
                "success_treatment": test["mean_a"], "success_baseline": test["mean_b"],
                "difference": {key: test[key] for key in ("estimate", "low", "high", "n", "method")},
                "n10": test["n10"], "n01": test["n01"], "discordance": test["discordance"],
                "design_effect": test["design_effect"], "test": test["test"], "p_value": test["p_value"],
                "family": "primary" if f"{model}/{name}" in set(primary) else "exploratory",
            })
    for family in ("primary", "exploratory"):
        members = [row for row in out if row["family"] == family]
        if not members:
            continue
        adjusted = holm([row["p_value"] for row in members], alpha)
        for row, p_holm, reject in zip(members, adjusted["adjusted"], adjusted["reject"]):
            row.update(p_holm=p_holm, significant=reject, family_size=len(members),
                       verdict=decide(row["difference"]["estimate"], p_holm, alpha),
                       mde=mde_paired_binary(row["n"], row["discordance"], alpha / len(members),
                                             n_effective=row["n"] / row["design_effect"]))
    return out
