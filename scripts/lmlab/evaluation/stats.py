"""Statistics of the evaluation: an interval on every per-cell aggregate (Wilson for 0/1
metrics, BCa bootstrap for the others, the pooled "all" resampled within tasks), paired
comparisons of every two design cells that differ in one factor (Newcombe interval, exact
McNemar, Holm per family: the config's primary hypotheses, then the exploratory rest, with
the verdict and the minimum detectable effect of each), gold NLL with a ratio interval for
the token-weighted perplexity, and the win-rate table -> results/evaluation/stats/.

The estimators themselves are lmlab.core.stats'; this module decides what is compared with
what and writes the tables.
"""

import itertools
import math
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_jsonl, write_json, write_tsv
from lmlab.core.stats import (
    bootstrap_ci,
    decide,
    holm,
    mde_paired_binary,
    mde_paired_mean,
    mde_proportion,
    mean_ci,
    paired_bootstrap_diff,
    paired_proportion_difference,
    ratio_ci,
)
from lmlab.evaluation.design import cell_id, differing_pairs, order_models
from lmlab.data.metrics import is_number

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
)


def task_groups(rows):
    """[(group, rows)]: each task (sorted), then "all"."""
    groups = {}
    for row in rows:
        groups.setdefault(row["task"], []).append(row)
    return [(task, groups[task]) for task in sorted(groups)] + [("all", list(rows))]


def metric_intervals(cell, scored, metrics, n_resamples, confidence, seed):
    """Interval rows of every metric defined on each task group of one cell
    (lmlab.core.stats.mean_ci: Wilson for 0/1 metrics; the bootstrap otherwise, with the
    pooled "all" group resampled within tasks since the per-task sizes are fixed by design)."""
    rows = []
    for group, items in task_groups(scored):
        for metric in metrics:
            kept = [r for r in items if is_number(r.get(metric))]
            if not kept:
                continue
            values = [float(r[metric]) for r in kept]
            strata = [r["task"] for r in kept] if group == "all" else None
            ci = mean_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed, strata=strata)
            rows.append({**cell, "cell": cell_id(cell), "task": group, "metric": metric,
                         **{k: ci[k] for k in ("estimate", "low", "high", "n", "method")}})
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


def compare_cells(factor, cell_a, cell_b, scored_a, scored_b, confidence):
    """Difference in share correct (a - b) with Newcombe's interval and the mid-p McNemar
    test, per task group, on the same items."""
    rows = []
    groups_b = dict(task_groups(scored_b))
    for group, items_a in task_groups(scored_a):
        ids, a, b = paired_values(items_a, groups_b.get(group, []), PRIMARY, cell_id(cell_a), cell_id(cell_b))
        if not ids:
            continue
        test = paired_proportion_difference([v > 0.5 for v in a], [v > 0.5 for v in b], confidence)
        rows.append(
            {
                "factor": factor,
                "a": cell_id(cell_a),
                "b": cell_id(cell_b),
                "task": group,
                "metric": PRIMARY,
                **{k: test[k] for k in ("estimate", "low", "high", "n", "mean_a", "mean_b", "method", "n10", "n01",
                                        "discordance", "test", "p_value")},
            }
        )
    return rows


def primary_pairs(primary, reference):
    """{(cell a, cell b)}: the cell ids of each declared primary comparison, the other
    factors at the reference cell."""
    pairs = []
    for hypothesis in primary:
        factor = hypothesis["factor"]
        cast = int if factor == "context" else str
        a = cell_id({**reference, factor: cast(hypothesis["a"])})
        b = cell_id({**reference, factor: cast(hypothesis["b"])})
        pairs.append((a, b))
    return pairs


def orient(row, pair):
    """The row read as pair[0] - pair[1] (the declared direction): flipped if it runs the other way."""
    if (row["a"], row["b"]) == pair:
        return row
    flipped = {**row, "a": row["b"], "b": row["a"], "mean_a": row["mean_b"], "mean_b": row["mean_a"],
               "estimate": -row["estimate"], "low": -row["high"], "high": -row["low"], "n10": row["n01"],
               "n01": row["n10"]}
    return flipped


def apply_families(rows, primary_cells=(), alpha=0.05):
    """Holm-adjust p_value within three families: the declared primary comparisons (task
    "all"), the other overall comparisons, and the per-task comparisons (both exploratory).
    Each row gets its family, the adjusted p, the verdict of lmlab.core.stats.decide, and its
    minimum detectable effect at 80% power: the exact power of the mid-p McNemar test at alpha / family size
    (Holm's strictest step) with the row's observed discordance. Primary rows are turned to
    the declared direction. Returns the rows, primary ones first."""
    declared = {frozenset(pair): pair for pair in primary_cells}
    out = []
    for row in rows:
        pair = declared.get(frozenset((row["a"], row["b"]))) if row["task"] == "all" else None
        if pair:
            out.append({**orient(row, pair), "family": "primary"})
        else:
            out.append({**row, "family": "exploratory" if row["task"] == "all" else "exploratory per task"})
    order = {"primary": 0, "exploratory": 1, "exploratory per task": 2}
    out.sort(key=lambda r: order[r["family"]])
    for family in order:
        members = [r for r in out if r["family"] == family]
        if not members:
            continue
        adjusted = holm([r["p_value"] for r in members], alpha=alpha)
        for r, p, reject in zip(members, adjusted["adjusted"], adjusted["reject"]):
            r.update(family_size=len(members), p_holm=p, significant=reject, verdict=decide(r["estimate"], p, alpha),
                     mde=mde_paired_binary(r["n"], r["discordance"], alpha / len(members)))
    return out


def perplexity(nll_rows):
    """Token-weighted corpus perplexity exp(sum nll*tokens / sum tokens) of gold_nll rows."""
    total_tokens = sum(r["gold_tokens"] for r in nll_rows)
    if total_tokens == 0:
        raise ValueError("perplexity of zero tokens")
    total = sum(r["gold_nll"] * r["gold_tokens"] for r in nll_rows if r["gold_tokens"])
    return math.exp(total / total_tokens)


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
                # The perplexity is token-weighted: its interval is the ratio estimator's
                # (items resampled with their token counts), not the per-item mean's.
                ppl = ratio_ci([r["gold_nll"] * r["gold_tokens"] for r in finite], [r["gold_tokens"] for r in finite],
                               n_resamples=n_resamples, confidence=confidence, seed=seed, transform=math.exp)
                row.update(ci, perplexity=perplexity(finite), perplexity_low=ppl["low"], perplexity_high=ppl["high"],
                           perplexity_method=ppl["method"], gold_tokens=sum(r["gold_tokens"] for r in finite))
            else:
                row.update(estimate=None, low=None, high=None, n=0, method="none", perplexity=None, perplexity_low=None,
                           perplexity_high=None, perplexity_method="none", gold_tokens=0)
            intervals.append(row)
    models = order_models(list(nll_rows_by_model))
    for b, a in itertools.combinations(models, 2):
        ids, va, vb = paired_values(nll_rows_by_model[a], nll_rows_by_model[b], "gold_nll", a, b)
        if ids:
            diff = paired_bootstrap_diff(va, vb, n_resamples=n_resamples, confidence=confidence, seed=seed)
            diffs.append({"a": a, "b": b, "task": "all", "metric": "gold_nll", **diff,
                          "mde": mde_paired_mean([x - y for x, y in zip(va, vb)])})
    return intervals, diffs


WINRATE_COLUMNS = ["model", "baseline", "judge", "kind", "estimate", "low", "high", "n", "method", "wins", "ties",
                   "losses", "p_value", "mde", "raw_win_rate", "reason", "order_agreement"]


def winrate_rows(result, alpha=0.05):
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
                    **{k: r.get(k) for k in ("estimate", "low", "high", "n", "method", "wins", "ties", "losses",
                                             "p_value", "raw_win_rate", "reason")},
                    "mde": mde_proportion(r["n"], alpha=alpha) if kind == "raw" else None,
                    "order_agreement": res["order_agreement"],
                }
            )
    return rows


INTERVAL_COLUMNS = ["cell", "model", "prompt", "context", "task", "metric", "estimate", "low", "high", "n", "method"]
COMPARISON_COLUMNS = ["family", "factor", "a", "b", "task", "metric", "estimate", "low", "high", "n", "mean_a",
                      "mean_b", "method", "n10", "n01", "discordance", "test", "p_value", "family_size", "p_holm",
                      "significant", "verdict", "mde"]
NLL_COLUMNS = ["model", "task", "metric", "estimate", "low", "high", "n", "method", "perplexity", "perplexity_low",
               "perplexity_high", "perplexity_method", "gold_tokens", "n_nonfinite"]
NLL_DIFF_COLUMNS = ["a", "b", "task", "metric", "estimate", "low", "high", "n", "mean_a", "mean_b", "method", "mde"]


def evaluation_stats(cells, metrics_paths, nll_paths, winrate_paths, out_dir, *, design, reference, n_resamples,
                     confidence, seed, alpha=0.05, judge_status=None, primary=()):
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
        comparisons += compare_cells(factor, a, b, scored[cell_id(a)], scored[cell_id(b)], confidence)
    declared = primary_pairs(primary, reference)
    comparisons = apply_families(comparisons, declared, alpha)
    ran = {(r["a"], r["b"]) for r in comparisons if r["family"] == "primary"}
    primary_status = [{"a": a, "b": b, "ran": (a, b) in ran} for a, b in declared]
    nll_intervals, nll_diffs = nll_stats({m: read_jsonl(p) for m, p in nll_paths.items()}, **kw)
    winrates = [read_json(p) for p in winrate_paths]
    wr_rows = [row for result in winrates for row in winrate_rows(result, alpha)]

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
        "primary": primary_status,
        "comparisons": comparisons,
        "nll": nll_intervals,
        "nll_comparisons": nll_diffs,
        "winrates": winrates,
        "judge": judge_status or {"available": bool(winrates)},
        "cost": cost,
    }
    write_json(out_dir / "stats.json", result)
    return result
