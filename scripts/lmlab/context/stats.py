"""The context_stats step: everything of the context study that needs no model run.

Tokenizers x datasets (fertility), prompt lengths per template, keep-the-beginning
truncation per window with tests of its bias across tasks and sentiment classes, sliding
windows with the retriever over long-context documents, and the tokens each scheme costs.
"""

import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lmlab.core.io import write_json, write_tsv
from lmlab.core.stats import holm, proportion_difference_test, wilson_interval
from lmlab.models.base import load_tokenizer
from lmlab.context.examples import DATASET_KINDS, LONG_TASK, SFT_DATASETS, dataset_order, load_datasets
from lmlab.context.records import template_records, truncation_records, window_records
from lmlab.context.tokenizers import (
    distribution,
    example_group,
    example_text,
    fertility_rows,
    load_backend,
    make_counter,
    words,
)

# ================================================================== aggregates


def template_length_rows(template_recs, templates, dataset_names):
    """Mean and p10/p50/p90 of prompt, response, total and overhead tokens per template x
    dataset (and 'all')."""
    rows = []
    for t in templates:
        for name in list(dataset_names) + ["all"]:
            recs = [r for r in template_recs if r["template"] == t and (name == "all" or r["dataset"] == name)]
            if not recs:
                continue
            row = {"template": t, "dataset": name, "examples": len(recs)}
            for field in ("prompt_tokens", "response_tokens", "total_tokens", "overhead_tokens"):
                d = distribution([r[field] for r in recs])
                for stat in ("mean", "p10", "p50", "p90"):
                    row[f"{field.replace('_tokens', '')}_{stat}"] = d[stat]
            rows.append(row)
    return rows


def truncation_groups(records):
    """Truncated share (Wilson interval), tokens lost and target survival per window for
    each dataset, for each SFT task (the three SFT splits pooled as 'sft'), for each task of
    the other datasets, and over everything ('all')."""
    groups = defaultdict(list)
    for r in records:
        pool = "sft" if r["dataset"] in SFT_DATASETS else r["dataset"]
        keys = {(r["dataset"], "all"), ("all", "all"), (pool, "all")}
        if r["task"] != "kb":
            keys.add((pool, r["task"]))
        for dataset, task in keys:
            groups[(dataset, task, r["window"])].append(r)
    rows = []
    order = sorted(groups, key=lambda k: (dataset_order(k[0]), k[1] != "all", k[1], k[2]))
    for dataset, task, w in order:
        recs = groups[(dataset, task, w)]
        k = sum(r["truncated"] for r in recs)
        share = wilson_interval(k, len(recs))
        targets = [r["target_survives"] for r in recs if r["target_survives"] is not None]
        lost = distribution([r["fraction_lost"] for r in recs])
        rows.append(
            {
                "dataset": dataset,
                "task": task,
                "window": w,
                "examples": len(recs),
                "truncated": k,
                "truncated_share": share["estimate"],
                "truncated_low": share["low"],
                "truncated_high": share["high"],
                "tokens_lost": sum(r["lost"] for r in recs),
                "fraction_lost_mean": lost["mean"],
                "fraction_lost_p90": lost["p90"],
                "target_survives": (sum(targets) / len(targets)) if targets else None,
            }
        )
    return rows


def truncation_bias(records, windows, seed=0):
    """Is truncation biased? For each window, a test of the truncated share across SFT tasks
    and across sentiment classes (all SFT splits pooled), with per-group Wilson intervals:
    chi-square where every expected count is at least 5, else Fisher (2 groups) or a seeded
    Monte Carlo permutation test. Each factor's tests over the windows form one Holm family
    (`p_holm`, `significant`)."""
    sft = [r for r in records if r["dataset"] in SFT_DATASETS]
    out = []
    for w in windows:
        at_w = [r for r in sft if r["window"] == w]
        for factor, key, subset in (
            ("task", "task", at_w),
            ("sentiment_label", "label", [r for r in at_w if r["task"] == "sentiment" and r["label"]]),
        ):
            counts = defaultdict(lambda: [0, 0])
            for r in subset:
                counts[r[key]][0] += int(r["truncated"])
                counts[r[key]][1] += 1
            if len(counts) < 2:
                continue
            test = proportion_difference_test({g: tuple(counts[g]) for g in sorted(counts)}, seed=seed)
            out.append({"window": w, "factor": factor, **test})
    for factor in ("task", "sentiment_label"):
        members = [row for row in out if row["factor"] == factor]
        if members:
            adjusted = holm([row["p_value"] for row in members])
            for row, p_holm, reject in zip(members, adjusted["adjusted"], adjusted["reject"]):
                row.update(p_holm=p_holm, significant=reject, family_size=len(members))
    return out


def truncation_by_class(records, windows):
    """Truncated share (Wilson interval) per window x sentiment class, SFT splits pooled."""
    rows = []
    for w in windows:
        sent = [r for r in records if r["window"] == w and r["task"] == "sentiment" and r["dataset"] in SFT_DATASETS]
        for label in sorted({r["label"] for r in sent if r["label"]}):
            recs = [r for r in sent if r["label"] == label]
            ci = wilson_interval(sum(r["truncated"] for r in recs), len(recs))
            rows.append(
                {
                    "window": w,
                    "label": label,
                    "examples": len(recs),
                    "truncated": ci["k"],
                    "truncated_share": ci["estimate"],
                    "truncated_low": ci["low"],
                    "truncated_high": ci["high"],
                }
            )
    return rows


def survival_groups(records):
    """Answer survival per window x depth bin (and 'all'): document truncation vs sliding
    windows + top-1 retrieval vs any window, with Wilson intervals."""
    groups = defaultdict(list)
    for r in records:
        for d in (r["depth_bin"], "all"):
            groups[(r["window"], d)].append(r)
    rows = []
    for (w, d), recs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all", kv[0][1])):
        row = {"window": w, "depth_bin": d, "documents": len(recs)}
        for arm in ("truncation", "retrieval", "any_window"):
            ci = wilson_interval(sum(r[f"{arm}_survives"] for r in recs), len(recs))
            row[f"{arm}_survives"] = ci["estimate"]
            row[f"{arm}_low"] = ci["low"]
            row[f"{arm}_high"] = ci["high"]
        row["windows_mean"] = float(np.mean([r["windows"] for r in recs]))
        row["overlap_tokens_mean"] = float(np.mean([r["overlap_tokens"] for r in recs]))
        row["doc_tokens_mean"] = float(np.mean([r["doc_tokens"] for r in recs]))
        rows.append(row)
    return rows


def cost_rows(examples, counts, template_recs, trunc_recs, win_recs, windows, template):
    """Tokens processed per example and per dataset under each tokenizer (raw text), each
    template (base tokenizer, prompt + response), each window (keep-the-beginning
    truncation of the `template` sequence), and for long-context documents the sliding-window
    arms (retrieval: one window + question; all windows: every window + question)."""
    rows = []

    def add(dataset, scheme, setting, values):
        rows.append(
            {
                "dataset": dataset,
                "scheme": scheme,
                "setting": str(setting),
                "examples": len(values),
                "tokens_total": int(sum(values)),
                "tokens_per_example": float(np.mean(values)) if values else None,
            }
        )

    template_order = list(dict.fromkeys(r["template"] for r in template_recs))
    names = [n for n in DATASET_KINDS if any(e["dataset"] == n for e in examples)]
    for name in names:
        idx = [i for i, e in enumerate(examples) if e["dataset"] == name]
        for tok, toks in counts.items():
            add(name, "tokenizer", tok, [toks[i] for i in idx])
        for t in template_order:
            vals = [r["total_tokens"] for r in template_recs if r["dataset"] == name and r["template"] == t]
            if vals:
                add(name, "template", t, vals)
        for w in windows:
            vals = [r["tokens"] - r["lost"] for r in trunc_recs if r["dataset"] == name and r["window"] == w]
            if vals:
                add(name, f"window ({template}, truncated)", w, vals)
    for w in windows:
        recs = [r for r in win_recs if r["window"] == w]
        if recs:
            add(LONG_TASK, "window (retrieval: 1 window)", w, [r["model_tokens_retrieval"] for r in recs])
            add(LONG_TASK, "window (all windows)", w, [r["model_tokens_all_windows"] for r in recs])
    return rows


# ================================================================== the stats step


def _throughput(examples, seconds):
    return {"examples": examples, "seconds": seconds, "examples_per_s": examples / seconds}


def _example_rows(datasets):
    """(rows of examples.tsv without token counts, the text each one measures)."""
    examples, texts = [], []
    for name, rows in datasets.items():
        kind = DATASET_KINDS[name]
        for row in rows:
            text = example_text(row, kind)
            texts.append(text)
            examples.append(
                {
                    "dataset": name,
                    "id": row["id"],
                    "lang": row["lang"],
                    "task": example_group(row, kind),
                    "words": words(text),
                    "bytes": len(text.encode("utf-8")),
                }
            )
    return examples, texts


def context_stats(
    data_paths,
    base_dir,
    bpe_paths,
    out_dir,
    templates,
    template,
    windows,
    stride_fraction=0.5,
    depth_edges=(0.0, 1 / 3, 2 / 3, 1.0),
    bm25_k1=1.2,
    bm25_b=0.75,
    max_rows=0,
    timing_path=None,
    seed=0,
):
    """Everything of the study that needs no model run. Writes into `out_dir` the per-example
    tables examples.tsv (words, bytes, tokens per tokenizer), templates.tsv (tokens per
    template), truncation.tsv (per example x window), windows.tsv (per long-context document
    x window), and stats.json (aggregates and tests).
    Wall-clock measurements go to `timing_path` only, so `out_dir` is byte-identical
    across runs. `max_rows` > 0 keeps the first rows of each file (quick test runs)."""
    out_dir = Path(out_dir)
    timing = {}
    datasets = load_datasets(data_paths)
    if max_rows:
        datasets = {name: rows[:max_rows] for name, rows in datasets.items()}
    hf_tokenizer = load_tokenizer(base_dir)
    base_backend = hf_tokenizer.backend_tokenizer
    backends = {"base": base_backend}
    for name, path in bpe_paths.items():
        backends[name] = load_backend(path)

    # ---- 1. tokenizers x datasets
    examples, texts = _example_rows(datasets)
    counts = {}
    for tok in ("regex", "chars", "bytes"):
        counts[tok] = make_counter(tok)(texts)
    for tok, backend in backends.items():
        started = time.perf_counter()
        counts[tok] = make_counter(tok, backend)(texts)
        timing[f"tokenize_{tok}"] = _throughput(len(texts), time.perf_counter() - started)
    fertility = fertility_rows(examples, counts)

    # ---- 2. templates
    started = time.perf_counter()
    template_recs = template_records(datasets, templates, hf_tokenizer, base_backend)
    timing["templates"] = _throughput(len(template_recs), time.perf_counter() - started)
    template_rows = template_length_rows(template_recs, templates, [n for n in DATASET_KINDS if n in datasets])

    # ---- 3. truncation
    kb_rows = datasets.get("kb", [])
    kb_counts = [counts["base"][i] for i, e in enumerate(examples) if e["dataset"] == "kb"]
    trunc_recs = truncation_records(template_recs, kb_rows, kb_counts, windows, template)
    trunc_rows = truncation_groups(trunc_recs)
    bias = truncation_bias(trunc_recs, windows, seed)
    class_rows = truncation_by_class(trunc_recs, windows)

    # ---- 4. sliding windows + retrieval
    win_recs = window_records(
        datasets, template, hf_tokenizer, base_backend, windows, stride_fraction, list(depth_edges), bm25_k1, bm25_b
    )
    survival = survival_groups(win_recs) if win_recs else []

    # ---- 5. cost
    costs = cost_rows(examples, counts, template_recs, trunc_recs, win_recs, windows, template)

    for i, e in enumerate(examples):
        for tok in counts:
            e[f"tokens_{tok}"] = counts[tok][i]
    write_tsv(out_dir / "examples.tsv", examples)
    write_tsv(out_dir / "templates.tsv", template_recs)
    write_tsv(out_dir / "truncation.tsv", trunc_recs)
    write_tsv(out_dir / "windows.tsv", win_recs)
    summary = {
        "tokenizers": list(counts),
        "bpe": {name: {"vocab_size": backends[name].get_vocab_size(with_added_tokens=True)} for name in bpe_paths},
        "base_vocab_size": base_backend.get_vocab_size(with_added_tokens=True),
        "templates": list(templates),
        "template": template,
        "windows": list(windows),
        "stride_fraction": stride_fraction,
        "depth_edges": list(depth_edges),
        "truncation_side": "truncation_side = right",
        "fertility": fertility,
        "template_lengths": template_rows,
        "truncation": trunc_rows,
        "truncation_by_class": class_rows,
        "truncation_bias": bias,
        "survival": survival,
        "cost": costs,
        "counts": {
            "examples": len(examples),
            "template_records": len(template_recs),
            "long_context_docs": len({r["id"] for r in win_recs}),
        },
    }
    write_json(out_dir / "stats.json", summary)
    if timing_path:
        write_json(timing_path, timing | {"load_average_1m": os.getloadavg()[0], "cpu_count": os.cpu_count()})
    return summary
