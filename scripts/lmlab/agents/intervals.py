"""The agents stage's statistics over per-task rows: every rate of the ablation table with
a bootstrap interval (`arm_intervals`), and paired success comparisons of arms with the
exact McNemar test and Holm's correction (`paired_comparisons`)."""

import numpy as np

from lmlab.core.stats import bootstrap_ci, holm, mcnemar_exact, paired_bootstrap_diff

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


def ratio_ci(numerators, denominators, n_resamples=2000, confidence=0.95, seed=0):
    """{estimate, low, high, n, denominator, method}: sum(num)/sum(den) with a percentile
    bootstrap over tasks (a task's calls stay together). None when sum(den) == 0."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.sum() == 0:
        return None
    estimate = float(num.sum() / den.sum())
    result = {"estimate": estimate, "low": estimate, "high": estimate, "n": int(keep.sum()),
              "denominator": int(den.sum()), "method": "constant"}
    if len(num) > 1 and not np.allclose(num / den, num[0] / den[0]):
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(num), size=(n_resamples, len(num)))
        resampled = num[index].sum(axis=1) / den[index].sum(axis=1)
        alpha = (1 - confidence) / 2
        low, high = np.quantile(resampled, [alpha, 1 - alpha])
        result.update(low=float(low), high=float(high), method="percentile")
    return result


def mean_ci(values, n_resamples=2000, confidence=0.95, seed=0):
    """bootstrap_ci of a mean (BCa, percentile fallback); None for an empty sample."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    return bootstrap_ci(values, np.mean, n_resamples=n_resamples, confidence=confidence, seed=seed)


def arm_intervals(rows, n_resamples=2000, confidence=0.95, seed=0):
    """Every rate of the ablation table for one model x arm, with 95% intervals and n."""
    tool_rows = [row for row in rows if row["tool_scored"]]
    out = {
        "n_tasks": len(rows),
        "success": mean_ci([row["success"] for row in rows], n_resamples, confidence, seed),
        "contains_gold": mean_ci([row["contains_gold"] for row in rows], n_resamples, confidence, seed),
        "hallucination_rate": mean_ci([row["hallucination"] for row in rows], n_resamples, confidence, seed),
        "mean_steps": mean_ci([row["n_steps"] for row in rows], n_resamples, confidence, seed),
    }
    for name, numerator, denominator in RATIO_METRICS:
        scored = tool_rows if name in TOOL_SCORED_ONLY else rows
        out[name] = ratio_ci([row[numerator] for row in scored], [row[denominator] for row in scored],
                             n_resamples, confidence, seed)
    out["stopped_by"] = {reason: sum(row["stopped_by"] == reason for row in rows) for reason in ("final", "budget", "format")}
    out["success_by_category"] = {
        category: mean_ci([row["success"] for row in rows if row["category"] == category], n_resamples, confidence, seed)
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


def paired_comparisons(rows_by_run, models, n_resamples=2000, confidence=0.95, seed=0, alpha=0.05):
    """Paired success comparisons of arms on the same tasks, per model.

    rows_by_run: {(model, arm): per-task rows}. For each model and each entry of
    COMPARISONS whose two arms ran: the difference in success (treatment - baseline) with a
    paired bootstrap interval, the exact McNemar test (n10 = treatment right and baseline
    wrong, n01 = the reverse), and Holm-adjusted p over every comparison returned (one
    family). Tasks are matched by id; different task sets are an error."""
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
            a_correct, b_correct = [a[i] for i in ids], [b[i] for i in ids]
            difference = paired_bootstrap_diff(
                [float(v) for v in a_correct], [float(v) for v in b_correct],
                n_resamples=n_resamples, confidence=confidence, seed=seed,
            )
            test = mcnemar_exact(a_correct, b_correct)
            out.append({
                "comparison": name, "model": model, "treatment": treatment, "baseline": baseline,
                "isolates": isolates, "n": len(ids),
                "success_treatment": sum(a_correct) / len(ids), "success_baseline": sum(b_correct) / len(ids),
                "difference": {key: difference[key] for key in ("estimate", "low", "high", "n", "method")},
                "n10": test["n10"], "n01": test["n01"], "p_mcnemar": test["p_value"],
            })
    if out:
        adjusted = holm([row["p_mcnemar"] for row in out], alpha)
        for row, p_holm, reject in zip(out, adjusted["adjusted"], adjusted["reject"]):
            row["p_holm"], row["significant"] = p_holm, reject
    return out
