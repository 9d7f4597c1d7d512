"""The context_report step: the context stage's paper tables, figures and summary.json
(every number the paper's context section cites), from the outputs of context_stats,
context_accuracy and context_bpb.

TABLES and FIGURES name the files rules/context.smk declares as outputs; the workflow
imports them when it parses the DAG, so this module imports no torch, transformers or
matplotlib at import time.
"""

import math
from pathlib import Path

import numpy as np

from lmlab.core.format import fmt_fixed, fmt_pct
from lmlab.core.io import read_json, read_tsv, write_tsv
from lmlab.core.timing import write_results
from lmlab.context.examples import LONG_TASK
from lmlab.context.figures import FIGURES, pick, write_figures

__all__ = ["FIGURES", "TABLES", "context_report"]

# Paper tables (results/context/tables/<name>.tsv), prefixed like FIGURES.
TABLES = (
    "context_tokenizers",
    "context_tokenizers_by_task",
    "context_templates",
    "context_truncation",
    "context_truncation_bias",
    "context_windows",
    "context_accuracy",
    "context_cost",
    "context_bpb",
)
_FERTILITY_COLUMNS = [
    "tokenizer",
    "lang",
    "examples",
    "tokens",
    "tokens_per_word",
    "tokens_per_word_p10",
    "tokens_per_word_p50",
    "tokens_per_word_p90",
    "tokens_per_word_mean",
    "tokens_per_byte",
    "tokens_per_byte_p10",
    "tokens_per_byte_p50",
    "tokens_per_byte_p90",
]


def _finite(obj):
    """JSON-safe copy: non-finite floats (Fisher's odds ratio of a zero cell) become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _ci(row, prefix, estimate, n_key):
    """{estimate, low, high, n, method} of a share's Wilson interval a row holds as `estimate`,
    <prefix>_low, <prefix>_high and `n_key` (lmlab.context.stats computes them with wilson_interval)."""
    return {"estimate": row[estimate], "low": row[f"{prefix}_low"], "high": row[f"{prefix}_high"], "n": row[n_key],
            "method": "wilson"}


def _one(rows, **where):
    hits = pick(rows, **where)
    if len(hits) != 1:
        raise ValueError(f"expected one row for {where}, found {len(hits)}")
    return hits[0]


def _bias(stats_, window, factor, field):
    """`field` of the truncation-bias test of `factor` at `window` (None if not run)."""
    return next((t[field] for t in stats_["truncation_bias"] if t["window"] == window and t["factor"] == factor), None)


# ================================================================== tables


def _bias_rows(stats_):
    """One row per truncation-bias test x group."""
    return [
        {
            "window": t["window"],
            "factor": t["factor"],
            "group": g["group"],
            "truncated": g["k"],
            "n": g["n"],
            "share": g["estimate"],
            "low": g["low"],
            "high": g["high"],
            "test": t["test"],
            "statistic": _finite(t["statistic"]),
            "dof": t["dof"],
            "p_value": t["p_value"],
            "p_holm": t["p_holm"],
        }
        for t in stats_["truncation_bias"]
        for g in t["groups"]
    ]


def _bpb_rows(bpb_results):
    return [
        {
            "tokenizer": r["tokenizer"],
            "vocab_size": r["vocab_size"],
            "parameters": r["parameters"]["total"],
            "non_embedding_parameters": r["parameters"]["non_embedding"],
            "training_tokens": r["budget"]["training_tokens"],
            "training_bytes_seen": r["budget"]["training_bytes_seen"],
            "bytes_per_token": r["bytes_per_token"],
            "bits_per_token": r["bits_per_token"],
            "bits_per_byte": r["bits_per_byte"],
        }
        for r in bpb_results
    ]


def write_tables(stats_, accuracy, bpb_results, tables_dir):
    """Every table of TABLES into `tables_dir`."""
    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    fert = stats_["fertility"]
    write_tsv(tables_dir / "context_tokenizers.tsv", pick(fert, dataset="all", task="all"), _FERTILITY_COLUMNS)
    by_task = [r for r in fert if r["dataset"] == "sft_train" and r["task"] != "all" and r["lang"] != "all"]
    write_tsv(tables_dir / "context_tokenizers_by_task.tsv", by_task, ["tokenizer", "task"] + _FERTILITY_COLUMNS[1:])
    write_tsv(tables_dir / "context_templates.tsv", stats_["template_lengths"])
    trunc_paper = [r for r in stats_["truncation"] if r["task"] == "all" or r["dataset"] == "sft"]
    write_tsv(tables_dir / "context_truncation.tsv", trunc_paper)
    write_tsv(tables_dir / "context_truncation_bias.tsv", _bias_rows(stats_))
    write_tsv(tables_dir / "context_windows.tsv", stats_["survival"])
    write_tsv(tables_dir / "context_accuracy.tsv", [dict(r) for r in accuracy["accuracy"]])
    write_tsv(tables_dir / "context_cost.tsv", stats_["cost"])
    write_tsv(tables_dir / "context_bpb.tsv", _bpb_rows(bpb_results))


# ================================================================== summary


def _tokenizer_summary(fert, tokenizers, langs):
    """Fertility of each tokenizer over all data, overall and per language."""

    def fert_of(tok, lang):
        r = _one(fert, tokenizer=tok, dataset="all", task="all", lang=lang)
        return {
            k: r[k]
            for k in (
                "tokens_per_word",
                "tokens_per_word_p10",
                "tokens_per_word_p50",
                "tokens_per_word_p90",
                "tokens_per_byte",
                "tokens_per_byte_p50",
                "tokens",
                "examples",
            )
        }

    return {tok: {lang: fert_of(tok, lang) for lang in ["all"] + langs} for tok in tokenizers}


def _truncation_summary(stats_):
    """Per window: truncated shares, target survival and the bias tests."""
    truncation = {}
    for w in stats_["windows"]:
        sft_all = _one(stats_["truncation"], dataset="sft", task="all", window=w)
        everything = _one(stats_["truncation"], dataset="all", task="all", window=w)
        lcqa = _one(stats_["truncation"], dataset="sft", task=LONG_TASK, window=w)
        truncation[str(w)] = {
            "sft_truncated": _ci(sft_all, "truncated", "truncated_share", "examples"),
            "all_truncated": _ci(everything, "truncated", "truncated_share", "examples"),
            "sft_response_survives": sft_all["target_survives"],
            "long_context_truncated": lcqa["truncated_share"],
            "long_context_answer_survives": lcqa["target_survives"],
            "bias_task_p": _bias(stats_, w, "task", "p_value"),
            "bias_task_p_holm": _bias(stats_, w, "task", "p_holm"),
            "bias_task_test": _bias(stats_, w, "task", "test"),
            "bias_label_p": _bias(stats_, w, "sentiment_label", "p_value"),
            "bias_label_p_holm": _bias(stats_, w, "sentiment_label", "p_holm"),
            "bias_label_test": _bias(stats_, w, "sentiment_label", "test"),
        }
    return truncation


def _sliding_summary(survival):
    """Per window, over all depths: answer survival of the three arms and the window costs."""
    return {
        str(r["window"]): {
            **{arm: _ci(r, arm, f"{arm}_survives", "documents") for arm in ("truncation", "retrieval", "any_window")},
            "windows_mean": r["windows_mean"],
            "overlap_tokens_mean": r["overlap_tokens_mean"],
            "doc_tokens_mean": r["doc_tokens_mean"],
        }
        for r in survival
        if r["depth_bin"] == "all"
    }


def _accuracy_summary(accuracy):
    """{arm: {window: accuracy interval, answer_in_context, tokens_in_mean}}, all depths."""
    acc = {}
    for r in accuracy["accuracy"]:
        if r["depth_bin"] == "all":
            acc.setdefault(r["arm"], {})[str(r["window"])] = {k: r[k] for k in ("estimate", "low", "high", "n", "method")} | {
                "answer_in_context": r["answer_in_context"],
                "tokens_in_mean": r["tokens_in_mean"],
            }
    return acc


def _key_numbers(stats_, examples, accuracy, tokenizers, langs, sft_templates):
    """The numbers the prose picks out (chosen by fixed rules, not by looking at results)."""
    windows_list = stats_["windows"]
    bias_window = windows_list[len(windows_list) // 2]
    bias_rows_w = [
        r for r in stats_["truncation"] if r["dataset"] == "sft" and r["task"] != "all" and r["window"] == bias_window
    ]
    top_task = max(bias_rows_w, key=lambda r: (r["truncated_share"], r["task"])) if bias_rows_w else None
    bpe_names = sorted(stats_["bpe"], key=lambda n: stats_["bpe"][n]["vocab_size"])
    cost = stats_["cost"]
    train_examples = [e for e in examples if e["dataset"] == "sft_train"]
    return {
        "es_over_en_base": (
            tokenizers["base"]["es"]["tokens_per_word"] / tokenizers["base"]["en"]["tokens_per_word"] - 1
            if {"en", "es"} <= set(langs)
            else None
        ),
        "smallest_bpe": bpe_names[0] if bpe_names else None,
        "largest_bpe": bpe_names[-1] if bpe_names else None,
        "base_train_tokens_p50": float(np.median([int(e["tokens_base"]) for e in train_examples])),
        "bytes_train_tokens_p50": float(np.median([int(e["tokens_bytes"]) for e in train_examples])),
        "longest_template": max(sft_templates, key=lambda t: (sft_templates[t]["total_mean"], t)),
        "bias_window": bias_window,
        "most_truncated_task": top_task["task"] if top_task else None,
        "most_truncated_share": top_task["truncated_share"] if top_task else None,
        "smallest_window": windows_list[0],
        "largest_window": windows_list[-1],
        "largest_accuracy_window": max(accuracy["windows"]),
        "cost_raw_base": _one(cost, dataset="sft_train", scheme="tokenizer", setting="base")["tokens_total"],
        "cost_template": _one(cost, dataset="sft_train", scheme="template", setting=stats_["template"])["tokens_total"],
        "bpe_order": bpe_names,
        # Largest window at which some sentiment example is cut (the class test is defined).
        "label_bias_window": max(
            (
                t["window"]
                for t in stats_["truncation_bias"]
                if t["factor"] == "sentiment_label" and t["test"] != "none"
            ),
            default=None,
        ),
    }


def context_report(
    stats_dir,
    accuracy_json,
    bpb_jsons,
    timing_jsons,
    tokenizer_infos,
    out_summary,
    tables_dir,
    figures_dir,
    out_timing,
):
    """Paper tables, figures and summary.json of the context stage, from the outputs of
    context_stats, context_accuracy and context_bpb (`bpb_jsons`: {tokenizer: path})."""
    stats_dir = Path(stats_dir)
    stats_ = read_json(stats_dir / "stats.json")
    examples = read_tsv(stats_dir / "examples.tsv")
    templates_ = read_tsv(stats_dir / "templates.tsv")
    accuracy = read_json(accuracy_json)
    bpb_results = [read_json(p) for _, p in bpb_jsons.items()]
    timing = {name: read_json(p) for name, p in timing_jsons.items()}
    write_tables(stats_, accuracy, bpb_results, tables_dir)
    write_figures(stats_, examples, templates_, accuracy, bpb_results, figures_dir)

    # ---- summary: every number the section cites
    fert = stats_["fertility"]
    langs = sorted({r["lang"] for r in fert if r["lang"] != "all"})
    tokenizers = _tokenizer_summary(fert, stats_["tokenizers"], langs)
    sft_templates = {
        r["template"]: {
            k: r[k] for k in ("prompt_mean", "response_mean", "total_mean", "total_p50", "total_p90", "overhead_mean")
        }
        for r in stats_["template_lengths"]
        if r["dataset"] == "sft_train"
    }
    windows = _sliding_summary(stats_["survival"])
    acc = _accuracy_summary(accuracy)
    bpb = {
        r["tokenizer"]: {
            "bits_per_byte": r["bits_per_byte"],
            "vocab_size": r["vocab_size"],
            "parameters": r["parameters"]["total"],
            "training_bytes_seen": r["budget"]["training_bytes_seen"],
        }
        for r in bpb_results
    }
    best_bpb = min(bpb_results, key=lambda r: r["bits_per_byte"])["tokenizer"]
    key = _key_numbers(stats_, examples, accuracy, tokenizers, langs, sft_templates)
    w_acc = str(key["largest_accuracy_window"])
    w_big = str(key["largest_window"])
    headline = (
        f"In the context study, keep-the-beginning truncation at {key['largest_window']} tokens leaves the long-context "
        f"answer in {fmt_pct(windows[w_big]['truncation']['estimate'], 0)} of documents and sliding windows with BM25 "
        f"retrieval in {fmt_pct(windows[w_big]['retrieval']['estimate'], 0)}; the base model's long-context accuracy "
        f"at {w_acc} tokens is {fmt_pct(acc['truncation'][w_acc]['estimate'], 0)} with truncation and "
        f"{fmt_pct(acc['retrieval'][w_acc]['estimate'], 0)} with retrieval, and under the same token budget the "
        f"{best_bpb} tiny LM reaches the lowest bits per byte ({fmt_fixed(bpb[best_bpb]['bits_per_byte'], 2)})."
    )
    summary = {
        "headline": headline,
        "key": key,
        "tokenizers": tokenizers,
        "tokenizer_names": stats_["tokenizers"],
        "bpe": {
            name: info | {"requested_vocab": tokenizer_infos.get(name, {}).get("requested_vocab")}
            for name, info in stats_["bpe"].items()
        },
        "base_vocab_size": stats_["base_vocab_size"],
        "templates": sft_templates,
        "template": stats_["template"],
        "truncation_side": stats_["truncation_side"],
        "windows_studied": stats_["windows"],
        "stride_fraction": stats_["stride_fraction"],
        "truncation": _truncation_summary(stats_),
        "truncation_by_class": {
            str(w): {
                r["label"]: _ci(r, "truncated", "truncated_share", "examples")
                for r in stats_["truncation_by_class"]
                if r["window"] == w
            }
            for w in stats_["windows"]
        },
        "sliding": windows,
        "accuracy": acc,
        "accuracy_setup": {
            k: accuracy[k]
            for k in (
                "items",
                "windows",
                "template",
                "metric",
                "decoding",
                "cells",
                "unique_prompts",
                "prompt_tokens",
                "items_per_depth_bin",
            )
        },
        "bpb": bpb,
        "bpb_best": best_bpb,
        # Orders for the prose (JSON objects are written with sorted keys).
        "bpb_order": [r["tokenizer"] for r in bpb_results],
        "template_order": list(stats_["templates"]),
        "bpb_budget": bpb_results[0]["budget"] | {"model": bpb_results[0]["model"]},
        "counts": stats_["counts"],
        # Wall-clock numbers: the only values that differ between identical runs, written
        # apart (out_timing) so summary.json is byte-identical across reruns.
        "timing": timing,
    }
    write_results(out_summary, _finite(summary), out_timing)
    return summary
