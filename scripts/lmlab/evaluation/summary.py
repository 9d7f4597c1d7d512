"""The evaluation summary for the paper: results/evaluation/summary.json, its tables
(tables/evaluation_*.tsv) and figures (figures/evaluation_*.{png,pdf}), all built from the
statistics (see stats), the matrix (see design) and the test items; the headline sentences
are built from the numbers, never typed.
"""

from pathlib import Path

from lmlab.core.format import apply_style, fmt_ci, save_figure
from lmlab.core.io import read_json, read_jsonl, read_tsv, write_json, write_tsv
from lmlab.core.timing import split_timing, write_results
from lmlab.evaluation.design import cell_id, order_models, parse_cell_id
from lmlab.evaluation.human import sheet_summary
from lmlab.evaluation.stats import PRIMARY, winrate_rows
from lmlab.evaluation.testset import counts

# Which secondary metrics the paper's table shows for each task family and overall.
SECONDARY_METRICS = {
    "json_extraction": ("json_parsed", "json_valid", "json_field_accuracy"),
    "summarization": ("rouge_l",),
    "kb_qa": ("f1",),
    "long_context_qa": ("f1",),
    "all": ("needless_refusal", "missing_refusal", "length_words", "tokens_out"),
}


# Which interval and test each table uses (the paper prints these beside the tables).
METHODS = {
    "shares": "Wilson score interval (0/1 metrics: share correct, JSON parsed/valid, refusals)",
    "continuous": "BCa bootstrap over items (the pooled 'all' row: percentile bootstrap within tasks)",
    "comparisons": "difference in share correct with Newcombe's hybrid score interval; McNemar mid-p test; "
                   "Holm's correction within each family (primary, exploratory, exploratory per task)",
    "mde": "minimum detectable effect at 80% power: exact power of the mid-p McNemar test at alpha / family "
           "size with the observed share of discordant items",
    "winrates": "Wilson interval (ties count 1/2) and exact sign test of wins against losses; the "
                "length-controlled rate from a logistic fit, BCa bootstrap, 'not estimable' when the fit "
                "is not identified",
    "nll": "per-item mean NLL: BCa bootstrap; perplexity: ratio estimator (token-weighted), BCa bootstrap",
}


def _ci(row):
    """The interval part {estimate, low, high, n, method} of a stats row."""
    return {k: row.get(k) for k in ("estimate", "low", "high", "n", "method")}


def _fmt_ci(row):
    """A stats row's interval as a table cell: '0.512 [0.401, 0.622], n = 60'."""
    return fmt_ci(_ci(row), 3)


def verdict_text(c):
    """The comparison's verdict with its evidence: the test after Holm, or the detectable effect."""
    if c["verdict"] == "no effect detected":
        limit = ("no effect of any size was detectable at this n" if c["mde"] is None
                 else f"no effect larger than {c['mde']:.2f} was detectable")
        return f"no effect detected (Holm p = {c['p_holm']:.3g}; {limit})"
    return f"{c['verdict']} ({c['test']}, Holm p = {c['p_holm']:.3g})"


def _yes(value):
    if value in (None, ""):
        return "n/a"
    return "yes" if value in (True, "true", "True") else "no"


def _interval_lookup(intervals):
    return {(r["cell"], r["task"], r["metric"]): r for r in intervals}


# --------------------------------------------------------------------------- figures


def _pyplot():
    """matplotlib.pyplot with the Agg backend and the paper's style."""
    # matplotlib is imported here, not at the top: only the figures need it, and it is slow to import.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    return plt


def _primary_bars(ax, lookup, cid, groups, offset, width, label):
    """One bar per task group of a cell's primary metric, shifted by `offset`, with its interval."""
    xs, ys, lo, hi = [], [], [], []
    for j, group in enumerate(groups):
        r = lookup.get((cid, group, PRIMARY))
        if r is None:
            continue
        xs.append(j + offset)
        ys.append(r["estimate"])
        lo.append(r["estimate"] - r["low"])
        hi.append(r["high"] - r["estimate"])
    ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=label, error_kw={"linewidth": 0.8})


def _group_ticks(ax, groups, fontsize):
    ax.set_xticks(range(len(groups)), [g.replace("_", "\n") for g in groups], fontsize=fontsize)


def _save(plt, fig, out_png, out_pdf):
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def primary_figure(models, tasks, lookup, ref, out_png, out_pdf):
    """Primary metric by model and task on the reference prompt and context, 95% intervals."""
    plt = _pyplot()
    groups = list(tasks) + ["all"]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(groups) + 1.5), 3.4))
    for k, model in enumerate(models):
        cid = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        _primary_bars(ax, lookup, cid, groups, (k - (len(models) - 1) / 2) * width, width, model)
    _group_ticks(ax, groups, 7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share correct (primary metric)")
    ax.set_xlabel(f"task family (prompt {ref['prompt']}, context {ref['context']} tokens)")
    ax.legend(frameon=False, fontsize=7, ncol=min(len(models), 5))
    _save(plt, fig, out_png, out_pdf)


def factors_figure(cells, tasks, lookup, ref, out_png, out_pdf):
    """Prompt-variant and context effects for the reference model: overall and per task."""
    plt = _pyplot()
    groups = list(tasks) + ["all"]
    panels = [
        ("prompt", [c for c in cells if c["model"] == ref["model"] and c["context"] == ref["context"]]),
        ("context", [c for c in cells if c["model"] == ref["model"] and c["prompt"] == ref["prompt"]]),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, (factor, members) in zip(axes, panels):
        width = 0.8 / max(len(members), 1)
        for k, cell in enumerate(members):
            label = f"ctx {cell['context']}" if factor == "context" else cell["prompt"]
            _primary_bars(ax, lookup, cell_id(cell), groups, (k - (len(members) - 1) / 2) * width, width, label)
        _group_ticks(ax, groups, 6)
        ax.set_title(f"{factor} ({ref['model']})")
        ax.set_xlabel("task family")
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("share correct (primary metric)")
    axes[0].set_ylim(0, 1.05)
    _save(plt, fig, out_png, out_pdf)


# --------------------------------------------------------------------------- summary


def _headline(ref_row, comparisons, winrates, judge_status, ref):
    """Two or three sentences for the abstract, built from the numbers (never typed)."""
    parts = []
    if ref_row:
        parts.append(
            f"In the reference evaluation cell ({cell_id(ref)}) the share of correct answers is "
            f"{_fmt_ci(ref_row)}."
        )
    for c in (c for c in comparisons if c["family"] == "primary"):
        parts.append(f"Primary comparison {c['a']} minus {c['b']}: {_fmt_ci(c)}, {verdict_text(c)}.")
    exploratory = [c for c in comparisons if c["family"] == "exploratory"]
    if exploratory:
        significant = sum(bool(c["significant"]) for c in exploratory)
        parts.append(f"{significant} of {len(exploratory)} exploratory comparisons between design cells reject "
                     "after Holm's correction within their family.")
    if judge_status.get("available"):
        first = winrates[0] if winrates else None
        if first:
            r = first["judges"]["scalar"]["raw"]
            parts.append(f"The learned reward model prefers {first['model']} over {first['baseline']} on "
                         f"{_fmt_ci(r)} of the items.")
    else:
        parts.append(judge_status.get("reason", "No win rate was computed."))
    return " ".join(parts)


def evaluation_summary(stats_json, matrix_tsv, items_path, out_summary, human_eval=None, human_key=None, prompts=None,
                       sft_template=None, cell_timings=None, out_timing=None, out_timing_table=None):
    """Rule evaluation_summary: results/evaluation/summary.json, tables/*.tsv and figures/*.{png,pdf}.

    `cell_timings`: {cell id: its generation timing file}; the wall-clock fields (generation
    seconds per cell) go to `out_timing` and the `out_timing_table` TSV, not to summary.json."""
    out_dir = Path(out_summary).parent
    tables, figures = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    st = read_json(stats_json)
    matrix = read_tsv(matrix_tsv)
    items = read_jsonl(items_path)
    ref = st["reference"]
    cells = [parse_cell_id(c) for c in st["cells"]]
    lookup = _interval_lookup(st["intervals"])
    tasks = sorted({r["task"] for r in st["intervals"] if r["task"] != "all"})
    models = order_models(sorted({c["model"] for c in cells if c["prompt"] == ref["prompt"] and c["context"] == ref["context"]}))

    # Matrix (which cells ran).
    matrix_rows_ = [
        {"model": r["model"], "prompt": r["prompt"], "context": r["context"], "agent_arm": r["agent_arm"],
         "in_design": _yes(r["in_design"]), "ran": _yes(r["ran"]), "reason": r["reason"]}
        for r in matrix
    ]
    write_tsv(tables / "evaluation_matrix.tsv", matrix_rows_)

    # Metric table with intervals: model x task on the reference prompt and context.
    metric_rows, metrics = [], {}
    for model in models:
        cell = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        row = {"model": model}
        metrics[model] = {}
        for group in tasks + ["all"]:
            r = lookup.get((cell, group, PRIMARY))
            row[group] = _fmt_ci(r) if r else ""
            if r:
                metrics[model][group] = _ci(r)
        metric_rows.append(row)
    write_tsv(tables / "evaluation_metrics.tsv", metric_rows, ["model"] + tasks + ["all"])

    # Secondary metrics on the reference prompt and context: each task's own, then the overall ones.
    secondary = []
    for model in models:
        cell = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        for group in tasks + ["all"]:
            for metric in SECONDARY_METRICS.get(group, ()):
                r = lookup.get((cell, group, metric))
                if r:
                    secondary.append({"model": model, "task": group, "metric": metric, "value": _fmt_ci(r)})
    write_tsv(tables / "evaluation_secondary.tsv", secondary, ["model", "task", "metric", "value"])

    # Every design cell: overall primary metric and cost.
    cost = {c["cell"]: c for c in st["cost"]}
    timings = {cid: read_json(path) for cid, path in (cell_timings or {}).items()}
    for cid, c in cost.items():
        c["generate_s"] = timings[cid]["generate_s"] if cid in timings else None
    cell_rows, cell_summary, time_rows = [], {}, []
    for cell in cells:
        cid = cell_id(cell)
        r = lookup.get((cid, "all", PRIMARY))
        c = cost[cid]
        cell_rows.append(
            {"cell": cid, "correct": _fmt_ci(r), "tokens_out_per_item": c["tokens_out"] / c["n"],
             "truncated_inputs": c["truncated"], "hit_max_new_tokens": c["hit_max_new_tokens"]}
        )
        if c["generate_s"] is not None:
            time_rows.append({"cell": cid, "n": c["n"], "generate_s": c["generate_s"],
                              "latency_s_per_item": c["generate_s"] / c["n"],
                              "generated_tokens_per_s": c["tokens_out"] / c["generate_s"] if c["generate_s"] else None})
        cell_summary[cid] = {"correct": _ci(r), **{k: c[k] for k in ("n", "generate_s", "tokens_in", "tokens_out",
                                                                       "truncated", "hit_max_new_tokens")},
                             "by_task": {g: _ci(lookup[(cid, g, PRIMARY)]) for g in tasks if (cid, g, PRIMARY) in lookup}}
    write_tsv(tables / "evaluation_cells.tsv", cell_rows)

    # Paired comparisons (primary and exploratory overall in the paper; every task in the second table).
    def comparison_row(c):
        return {"family": c["family"], "factor": c["factor"], "a": c["a"], "b": c["b"], "task": c["task"],
                "difference": _fmt_ci(c), "n10": c["n10"], "n01": c["n01"], "p": c["p_value"],
                "p_holm": c["p_holm"], "verdict": c["verdict"], "mde": c["mde"]}

    write_tsv(tables / "evaluation_comparisons.tsv",
              [comparison_row(c) for c in st["comparisons"] if c["task"] == "all"])
    write_tsv(tables / "evaluation_comparisons_by_task.tsv",
              [comparison_row(c) for c in st["comparisons"] if c["task"] != "all"])

    # Win rates.
    wr_rows = []
    for w in st["winrates"]:
        for row in winrate_rows(w, st["alpha"]):
            wr_rows.append({"model": row["model"], "baseline": row["baseline"], "judge": row["judge"],
                            "kind": row["kind"], "win_rate": _fmt_ci(row) if row["estimate"] is not None
                            else f"not estimable ({row['reason']}); raw {row['raw_win_rate']:.3f}",
                            "method": row["method"],
                            "wins_ties_losses": f"{row['wins']}/{row['ties']}/{row['losses']}"
                            if row["wins"] is not None else "",
                            "p_sign": row["p_value"], "mde": row["mde"],
                            "order_agreement": row["order_agreement"]})
    write_tsv(tables / "evaluation_winrates.tsv", wr_rows,
              ["model", "baseline", "judge", "kind", "win_rate", "method", "wins_ties_losses", "p_sign", "mde",
               "order_agreement"])

    # Gold NLL.
    nll_rows = [{"model": r["model"], "gold_nll": _fmt_ci(r) if r["n"] else "",
                 "perplexity": fmt_ci({"estimate": r["perplexity"], "low": r["perplexity_low"],
                                       "high": r["perplexity_high"]}, 2) if r["n"] else "",
                 "gold_tokens": r["gold_tokens"], "nonfinite_items": r["n_nonfinite"]}
                for r in st["nll"] if r["task"] == "all"]
    write_tsv(tables / "evaluation_nll.tsv", nll_rows,
              ["model", "gold_nll", "perplexity", "gold_tokens", "nonfinite_items"])

    primary_figure(models, tasks, lookup, ref, figures / "evaluation_primary_by_model.png",
                   figures / "evaluation_primary_by_model.pdf")
    factors_figure(cells, tasks, lookup, ref, figures / "evaluation_factors.png", figures / "evaluation_factors.pdf")

    ref_row = lookup.get((cell_id(ref), "all", PRIMARY))
    summary = {
        "headline": _headline(ref_row, st["comparisons"], st["winrates"], st["judge"], ref),
        "design": st["design"],
        "reference": {**ref, "cell": cell_id(ref)},
        "primary_metric": PRIMARY,
        "confidence": st["confidence"],
        "n_resamples": st["n_resamples"],
        "alpha": st["alpha"],
        "n_items": len(items),
        "items_per_task": counts(items, "task"),
        "items_per_lang": counts(items, "lang"),
        "models": models,
        "tasks": tasks,
        "sft_template": sft_template,
        "prompts": {name: {"template": spec[0], "constrained": bool(spec[1])} for name, spec in (prompts or {}).items()},
        "contexts": sorted({c["context"] for c in cells}),
        "matrix": {
            "cells_total": sum(r["stage"] == "evaluation" for r in matrix),
            "cells_in_design": sum(r["stage"] == "evaluation" and _yes(r["in_design"]) == "yes" for r in matrix),
            "cells_ran": sum(r["stage"] == "evaluation" and _yes(r["ran"]) == "yes" for r in matrix),
            "agent_arms": sum(r["stage"] == "agents" for r in matrix),
        },
        "metrics": metrics,
        "cells": cell_summary,
        "primary": st["primary"],
        "comparisons": [
            {k: c[k] for k in ("family", "factor", "a", "b", "task", "n", "estimate", "low", "high", "method", "n10",
                               "n01", "discordance", "test", "p_value", "p_holm", "significant", "verdict", "mde",
                               "family_size")}
            for c in st["comparisons"] if c["task"] == "all"
        ],
        "n_comparisons": {family: sum(c["family"] == family for c in st["comparisons"])
                          for family in ("primary", "exploratory", "exploratory per task")},
        "methods": METHODS,
        "winrates": {
            **st["judge"],
            "pairs": {f"{w['model']}_vs_{w['baseline']}": {
                judge: {kind: _ci(res[kind]) for kind in ("raw", "length_controlled")}
                | {"order_agreement": res["order_agreement"]}
                for judge, res in w["judges"].items()} for w in st["winrates"]},
        },
        "nll": {r["model"]: {**_ci(r), "perplexity": r["perplexity"], "perplexity_low": r["perplexity_low"],
                             "perplexity_high": r["perplexity_high"], "n_nonfinite": r["n_nonfinite"]}
                for r in st["nll"] if r["task"] == "all"},
        "cost": {
            "generate_s_total": sum(c["generate_s"] or 0.0 for c in st["cost"]),
            "tokens_out_total": sum(c["tokens_out"] for c in st["cost"]),
            "generations": sum(c["n"] for c in st["cost"]),
        },
        "human_eval": sheet_summary(human_eval, human_key),
    }
    if out_timing:
        write_results(out_summary, summary, out_timing)
        write_tsv(out_timing_table, time_rows, ["cell", "n", "generate_s", "latency_s_per_item", "generated_tokens_per_s"])
    else:
        write_json(out_summary, split_timing(summary)[0])
    return summary
