"""Statistics of the evaluation: bootstrap intervals on every per-cell aggregate, paired
comparisons of every two design cells that differ in one factor (paired bootstrap and exact
McNemar, Holm-adjusted), gold NLL and perplexity, and the win-rate table
-> results/evaluation/stats/.

The estimators themselves are lmlab.core.stats'; this module decides what is compared with
what and writes the tables.
"""

import itertools
import math
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_jsonl, write_json, write_tsv
from lmlab.core.stats import bootstrap_ci, holm, mcnemar_exact, paired_bootstrap_diff
from lmlab.evaluation.design import cell_id, differing_pairs, order_models
from lmlab.data.metrics import is_number
from lmlab.evaluation.nll import perplexity

# The primary, binary, per-item metric every table and test is built on (lmlab.data.metrics).
PRIMARY = "correct"
# Secondary per-item metrics that get intervals wherever they are defined.
INTERVAL_METRICS = (
    "correct",
    "f1",
    "rouge_l",
    "json_parsed",
    "json_valid",
    "json_field_accuracy",
    "needless_refusal",
    "missing_refusal",
    "length_words",
    "tokens_out",
    "latency_s",
)


def task_groups(rows):
    """[(group, rows)]: each task (sorted), then "all"."""
    groups = {}
    for row in rows:
        groups.setdefault(row["task"], []).append(row)
    return [(task, groups[task]) for task in sorted(groups)] + [("all", list(rows))]


def metric_intervals(cell, scored, metrics, n_resamples, confidence, seed):
    """Bootstrap interval rows of every metric defined on each task group of one cell."""
    rows = []
    for group, items in task_groups(scored):
        for metric in metrics:
            values = [float(r[metric]) for r in items if is_number(r.get(metric))]
            if not values:
                continue
            ci = bootstrap_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
            rows.append({**cell, "cell": cell_id(cell), "task": group, "metric": metric, **ci})
    return rows


def paired_values(a_rows, b_rows, metric, label_a, label_b):
    """Aligned per-item values of two cells on the same items (same ids, or an error)."""
    a = {r["id"]: r for r in a_rows}
    b = {r["id"]: r for r in b_rows}
    if set(a) != set(b):
        raise InputError(f"{label_a} and {label_b}: scored on different items; cells must share the test set")

    def ok(value):
        return is_number(value) and math.isfinite(value)

    ids = sorted(i for i in a if ok(a[i].get(metric)) and ok(b[i].get(metric)))
    return ids, [float(a[i][metric]) for i in ids], [float(b[i][metric]) for i in ids]


def compare_cells(factor, cell_a, cell_b, scored_a, scored_b, n_resamples, confidence, seed):
    """Paired bootstrap of mean(correct_a) - mean(correct_b) and the exact McNemar test,
    per task group, on the same items."""
    rows = []
    groups_b = dict(task_groups(scored_b))
    for group, items_a in task_groups(scored_a):
        ids, a, b = paired_values(items_a, groups_b.get(group, []), PRIMARY, cell_id(cell_a), cell_id(cell_b))
        if not ids:
            continue
        diff = paired_bootstrap_diff(a, b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        test = mcnemar_exact([v > 0.5 for v in a], [v > 0.5 for v in b])
        rows.append(
            {
                "factor": factor,
                "a": cell_id(cell_a),
                "b": cell_id(cell_b),
                "task": group,
                "metric": PRIMARY,
                "n": diff["n"],
                "mean_a": diff["mean_a"],
                "mean_b": diff["mean_b"],
                "estimate": diff["estimate"],
                "low": diff["low"],
                "high": diff["high"],
                "method": diff["method"],
                "n10": test["n10"],
                "n01": test["n01"],
                "p_mcnemar": test["p_value"],
            }
        )
    return rows


def apply_holm(rows, alpha=0.05):
    """Holm-adjust p_mcnemar within two families: the overall comparisons (task "all", the
    headline family) and the per-task comparisons."""
    for family, member in (("overall", lambda r: r["task"] == "all"), ("per_task", lambda r: r["task"] != "all")):
        members = [r for r in rows if member(r)]
        if not members:
            continue
        adjusted = holm([r["p_mcnemar"] for r in members], alpha=alpha)
        for r, p, reject in zip(members, adjusted["adjusted"], adjusted["reject"]):
            r["holm_family"] = family
            r["holm_family_size"] = len(members)
            r["p_holm"] = p
            r["significant"] = reject
    return rows


def nll_stats(nll_rows_by_model, n_resamples, confidence, seed):
    """Per model: mean gold NLL interval and token-weighted perplexity by task group, and
    paired differences of mean NLL between every two models (overall)."""
    intervals, diffs = [], []
    for model, all_rows in nll_rows_by_model.items():
        for group, items in task_groups(all_rows):
            # A diverged model gives NaN/inf NLL: counted, reported, left out of the mean.
            finite = [r for r in items if r["gold_tokens"] and is_number(r["gold_nll"]) and math.isfinite(r["gold_nll"])]
            row = {"model": model, "task": group, "metric": "gold_nll", "n_nonfinite": len(items) - len(finite)}
            if finite:
                ci = bootstrap_ci([r["gold_nll"] for r in finite], n_resamples=n_resamples, confidence=confidence,
                                  seed=seed)
                row.update(ci, perplexity=perplexity(finite), gold_tokens=sum(r["gold_tokens"] for r in finite))
            else:
                row.update(estimate=None, low=None, high=None, n=0, method="none", perplexity=None, gold_tokens=0)
            intervals.append(row)
    models = order_models(list(nll_rows_by_model))
    for b, a in itertools.combinations(models, 2):
        ids, va, vb = paired_values(nll_rows_by_model[a], nll_rows_by_model[b], "gold_nll", a, b)
        if ids:
            diff = paired_bootstrap_diff(va, vb, n_resamples=n_resamples, confidence=confidence, seed=seed)
            diffs.append({"a": a, "b": b, "task": "all", "metric": "gold_nll", **diff})
    return intervals, diffs


WINRATE_COLUMNS = ["model", "baseline", "judge", "kind", "estimate", "low", "high", "n", "method", "wins", "ties",
                   "losses", "order_agreement"]


def winrate_rows(result):
    rows = []
    for judge, res in result["judges"].items():
        for kind in ("raw", "length_controlled"):
            r = res[kind]
            rows.append(
                {
                    "model": result["model"],
                    "baseline": result["baseline"],
                    "judge": judge,
                    "kind": kind,
                    **{k: r.get(k) for k in ("estimate", "low", "high", "n", "method", "wins", "ties", "losses")},
                    "order_agreement": res["order_agreement"],
                }
            )
    return rows


INTERVAL_COLUMNS = ["cell", "model", "prompt", "context", "task", "metric", "estimate", "low", "high", "n", "method"]
COMPARISON_COLUMNS = ["factor", "a", "b", "task", "metric", "n", "mean_a", "mean_b", "estimate", "low", "high",
                      "method", "n10", "n01", "p_mcnemar", "holm_family", "holm_family_size", "p_holm", "significant"]
NLL_COLUMNS = ["model", "task", "metric", "estimate", "low", "high", "n", "method", "perplexity", "gold_tokens",
               "n_nonfinite"]
NLL_DIFF_COLUMNS = ["a", "b", "task", "metric", "n", "mean_a", "mean_b", "estimate", "low", "high", "method"]


def evaluation_stats(cells, metrics_paths, nll_paths, winrate_paths, out_dir, *, design, reference, n_resamples,
                     confidence, seed, alpha=0.05, judge_status=None):
    """Rule evaluation_stats: intervals on every aggregate, paired comparisons of every two design
    cells that differ in one factor, gold NLL, win rates -> results/evaluation/stats/."""
    out_dir = Path(out_dir)
    kw = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)
    scored = {cell_id(c): read_jsonl(p) for c, p in zip(cells, metrics_paths)}
    intervals = []
    for cell in cells:
        intervals += metric_intervals(cell, scored[cell_id(cell)], INTERVAL_METRICS, **kw)
    comparisons = []
    for factor, a, b in differing_pairs(cells):
        comparisons += compare_cells(factor, a, b, scored[cell_id(a)], scored[cell_id(b)], **kw)
    apply_holm(comparisons, alpha)
    nll_intervals, nll_diffs = nll_stats({m: read_jsonl(p) for m, p in nll_paths.items()}, **kw)
    winrates = [read_json(p) for p in winrate_paths]
    wr_rows = [row for result in winrates for row in winrate_rows(result)]

    write_tsv(out_dir / "intervals.tsv", intervals, INTERVAL_COLUMNS, digits=6)
    write_tsv(out_dir / "comparisons.tsv", comparisons, COMPARISON_COLUMNS, digits=6)
    write_tsv(out_dir / "nll.tsv", nll_intervals, NLL_COLUMNS, digits=6)
    write_tsv(out_dir / "nll_comparisons.tsv", nll_diffs, NLL_DIFF_COLUMNS, digits=6)
    write_tsv(out_dir / "winrates.tsv", wr_rows, WINRATE_COLUMNS, digits=6)
    cost = []
    for cell in cells:
        rows = scored[cell_id(cell)]
        cost.append(
            {
                "cell": cell_id(cell),
                **cell,
                "n": len(rows),
                "generate_s": sum(r["latency_s"] for r in rows),
                "tokens_in": sum(r["tokens_in"] for r in rows),
                "tokens_out": sum(r["tokens_out"] for r in rows),
                "truncated": sum(bool(r["truncated"]) for r in rows),
                "hit_max_new_tokens": sum(bool(r["hit_max_new_tokens"]) for r in rows),
            }
        )
    result = {
        "design": design,
        "reference": reference,
        "cells": [cell_id(c) for c in cells],
        "primary_metric": PRIMARY,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "alpha": alpha,
        "seed": seed,
        "intervals": intervals,
        "comparisons": comparisons,
        "nll": nll_intervals,
        "nll_comparisons": nll_diffs,
        "winrates": winrates,
        "judge": judge_status or {"available": bool(winrates)},
        "cost": cost,
    }
    write_json(out_dir / "stats.json", result)
    return result
