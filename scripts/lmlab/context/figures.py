"""The context stage's paper figures (figures/<name>.png and .pdf), drawn from the outputs
of context_stats, context_accuracy and context_bpb.
"""

import math
from pathlib import Path

import numpy as np

from lmlab.core.format import apply_style, save_figure

# Paper figures (results/context/figures/<name>.png|pdf); names carry the stage prefix
# because the paper copies every stage's files into one folder.
FIGURES = (
    "context_lengths_tokenizers",
    "context_lengths_templates",
    "context_truncation",
    "context_survival",
    "context_accuracy",
    "context_bpb",
)


def pick(rows, **where):
    """The rows whose fields equal every `where` value."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def _save(fig, figures_dir, name):
    save_figure(fig, Path(figures_dir) / f"{name}.png", Path(figures_dir) / f"{name}.pdf")


def _error_bars(rows, estimate, low, high):
    """(y, yerr) of an errorbar plot from each row's estimate and interval bounds."""
    y = np.array([r[estimate] for r in rows])
    return y, [y - [r[low] for r in rows], [r[high] for r in rows] - y]


def _log_bins(values):
    """40 log-spaced bins from the smallest (at least 1) to one past the largest value."""
    return np.logspace(math.log10(max(1, min(values))), math.log10(max(values) + 1), 40)


def write_figures(stats_, examples, templates_, accuracy, bpb_results, figures_dir):
    """Every figure of FIGURES into `figures_dir`. `stats_` is stats.json, `examples` and
    `templates_` the rows of examples.tsv and templates.tsv, `accuracy` accuracy.json,
    `bpb_results` the bpb JSONs."""
    # matplotlib stays lazy: rules/context.smk imports this package when the DAG is parsed.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)

    # Lengths per tokenizer: tokens per SFT training example, log-spaced bins.
    train = [e for e in examples if e["dataset"] == "sft_train"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    values = {tok: [int(e[f"tokens_{tok}"]) for e in train] for tok in stats_["tokenizers"]}
    bins = _log_bins([x for v in values.values() for x in v])
    for tok, v in values.items():
        ax.hist(v, bins=bins, histtype="step", linewidth=1.2, label=tok)
    ax.set_xscale("log")
    ax.set_xlabel("tokens per example (sft_train, log scale)")
    ax.set_ylabel("examples")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    _save(fig, figures_dir, "context_lengths_tokenizers")
    plt.close(fig)

    # Lengths per template under the base tokenizer.
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    recs = [r for r in templates_ if r["dataset"] == "sft_train"]
    bins = _log_bins([int(r["total_tokens"]) for r in recs])
    for t in stats_["templates"]:
        ax.hist(
            [int(r["total_tokens"]) for r in recs if r["template"] == t],
            bins=bins,
            histtype="step",
            linewidth=1.2,
            label=t,
        )
    for w in stats_["windows"]:
        ax.axvline(w, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("prompt + response tokens per example (base tokenizer, sft_train; dotted: windows)")
    ax.set_ylabel("examples")
    ax.legend(frameon=False, title="template")
    _save(fig, figures_dir, "context_lengths_templates")
    plt.close(fig)

    # Truncated share per window, by SFT task (Wilson intervals).
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    rows = [r for r in stats_["truncation"] if r["dataset"] == "sft" and r["task"] != "all"]
    tasks = sorted({r["task"] for r in rows})
    for i, task in enumerate(tasks):
        rs = sorted(pick(rows, task=task), key=lambda r: r["window"])
        x = np.array([r["window"] for r in rs]) * (1 + 0.02 * (i - len(tasks) / 2))
        y, err = _error_bars(rs, "truncated_share", "truncated_low", "truncated_high")
        ax.errorbar(x, y, yerr=err, marker="o", markersize=3, capsize=2, linewidth=1, label=task)
    ax.set_xscale("log", base=2)
    ax.set_xticks(stats_["windows"], [str(w) for w in stats_["windows"]])
    ax.set_xlabel(f"context window (tokens, {stats_['template']} template)")
    ax.set_ylabel("share of examples truncated")
    ax.legend(frameon=False, fontsize=7)
    _save(fig, figures_dir, "context_truncation")
    plt.close(fig)

    # Answer survival by depth: document truncation vs sliding windows + BM25 top-1.
    survival = [r for r in stats_["survival"] if r["depth_bin"] != "all"]
    windows = stats_["windows"]
    fig, axes = plt.subplots(1, len(windows), figsize=(2.2 * len(windows), 2.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, w in zip(axes, windows):
        rs = pick(survival, window=w)
        x = np.arange(len(rs))
        for arm, style in (("truncation", "o-"), ("retrieval", "s--")):
            y, err = _error_bars(rs, f"{arm}_survives", f"{arm}_low", f"{arm}_high")
            ax.errorbar(x, y, yerr=err, fmt=style, markersize=3, capsize=2, linewidth=1, label=arm)
        ax.set_xticks(x, [r["depth_bin"].split("-")[0] for r in rs], fontsize=7)
        ax.set_title(f"W = {w}")
        ax.set_xlabel("answer depth (bin start)")
    axes[0].set_ylabel("answer in context (share)")
    axes[0].legend(frameon=False, fontsize=7)
    _save(fig, figures_dir, "context_survival")
    plt.close(fig)

    # Accuracy vs window, with bootstrap intervals.
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for arm, style, dodge in (("truncation", "o-", 0.97), ("retrieval", "s--", 1.03)):
        rs = sorted(pick(accuracy["accuracy"], arm=arm, depth_bin="all"), key=lambda r: r["window"])
        y, err = _error_bars(rs, "estimate", "low", "high")
        x = np.array([r["window"] for r in rs]) * dodge  # side by side, so the intervals stay readable
        ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=arm)
    ax.set_xscale("log", base=2)
    ax.set_xticks(accuracy["windows"], [str(w) for w in accuracy["windows"]])
    ax.set_xlabel("context window (tokens)")
    ax.set_ylabel("accuracy (answer contained)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(frameon=False)
    _save(fig, figures_dir, "context_accuracy")
    plt.close(fig)

    # Bits per byte per tokenizer.
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    names = [r["tokenizer"] for r in bpb_results]
    ax.bar(names, [r["bits_per_byte"] for r in bpb_results], color="#4C72B0")
    ax.set_ylabel("validation bits per byte")
    ax.set_xlabel("tokenizer of the tiny LM (same training tokens)")
    _save(fig, figures_dir, "context_bpb")
    plt.close(fig)
