"""The context_accuracy step: the base model's long-context QA accuracy per context window,
with the document cut to the window (truncation) or replaced by the sliding window the
retriever picks (retrieval).
"""

import os
import random
import time
from collections import defaultdict

import numpy as np

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_json, write_jsonl
from lmlab.core.stats import proportion_ci
from lmlab.data.metrics import contains_answer
from lmlab.models.base import load_model, load_tokenizer
from lmlab.models.generation import decoding_settings, generate_batched
from lmlab.models.templates import render_prompt
from lmlab.context.examples import LONG_TASK, depth_bin, long_context_doc, row_depth
from lmlab.context.retriever import located_terms, retrieve_top1, window_passages
from lmlab.context.windows import char_span_to_tokens, doc_stride, token_window_chars, window_starts

ARMS = ("truncation", "retrieval")


def stratified_sample(rows, n, depth_edges, seed):
    """Up to n rows, taken round-robin over depth bins (rows shuffled within a bin with
    `seed`), so every answer depth is represented equally."""
    bins = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        bins[depth_bin(row_depth(row), depth_edges)].append(row)
    rng = random.Random(seed)
    for key in sorted(bins):
        rng.shuffle(bins[key])
    picked = []
    while len(picked) < min(n, len(rows)):
        for key in sorted(bins):
            if bins[key] and len(picked) < n:
                picked.append(bins[key].pop(0))
    return picked


def _fit_prompt(row, doc_text, template, hf_tokenizer, backend):
    """Render the prompt with `doc_text` as the document; returns (prompt, n_tokens)."""
    prompt = render_prompt({**row, "input": doc_text}, template, hf_tokenizer, constrained=True)
    return prompt, len(backend.encode(prompt, add_special_tokens=False).ids)


def window_prompts(row, lc, template, hf_tokenizer, backend, window, stride_fraction, k1, b):
    """The two prompts of one item at context window W, each at most W tokens:
    'truncation' (the document's first tokens) and 'retrieval' (the BM25 top-1 sliding
    window of the document). Returns {arm: {prompt, tokens, doc_tokens_kept, answer_in_context}}."""
    enc = backend.encode(lc["doc"], add_special_tokens=False)
    offsets, n_doc = enc.offsets, len(enc.ids)
    span = char_span_to_tokens(offsets, lc["start"], lc["end"])
    _, full = _fit_prompt(row, lc["doc"], template, hf_tokenizer, backend)
    budget = window - (full - n_doc)
    out = {}
    if budget <= 0:
        return out
    starts = window_starts(n_doc, budget, doc_stride(budget, stride_fraction))
    passages = window_passages(located_terms(lc["doc"]), offsets, starts, budget)
    top = retrieve_top1(lc["question"], passages, k1, b)
    for arm, start in zip(ARMS, (0, starts[top])):
        size = budget
        while size > 0:
            first, last = token_window_chars(offsets, start, size)
            prompt, n = _fit_prompt(row, lc["doc"][first:last], template, hf_tokenizer, backend)
            if n <= window:
                break
            size -= n - window  # token merges at the cut can add a token or two
        end = min(start + size, n_doc)
        out[arm] = {
            "prompt": prompt,
            "tokens": n,
            "doc_start": start,
            "doc_tokens_kept": end - start,
            "answer_in_context": start <= span[0] and span[1] <= end,
        }
    return out


def _accuracy_rows(out_rows, windows, n_resamples, seed):
    """Accuracy (Wilson interval) per arm x window, over all items and per depth bin."""
    results = []
    for arm in ARMS:
        for w in windows:
            for d in ["all"] + sorted({c["depth_bin"] for c in out_rows}):
                sel = [r for r in out_rows if r["arm"] == arm and r["window"] == w and d in ("all", r["depth_bin"])]
                if not sel:
                    continue
                ci = proportion_ci([float(r["correct"]) for r in sel])
                results.append(
                    {
                        "arm": arm,
                        "window": w,
                        "depth_bin": d,
                        **ci,
                        "answer_in_context": sum(r["answer_in_context"] for r in sel) / len(sel),
                        "tokens_in_mean": float(np.mean([r["tokens_in"] for r in sel])),
                    }
                )
    return results


def context_accuracy(
    test_path,
    base_dir,
    out_generations,
    out_json,
    template,
    windows,
    items=35,
    max_new_tokens=16,
    batch_size=8,
    stride_fraction=0.5,
    depth_edges=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    bm25_k1=1.2,
    bm25_b=0.75,
    n_resamples=2000,
    seed=0,
    timing_path=None,
):
    """Greedy answers of the base model on long-context QA test items with the document cut
    to each window (truncation) or replaced by the retrieved sliding window (retrieval);
    accuracy = the normalised gold answer is contained in the normalised prediction, with a
    bootstrap interval per arm x window and per arm x window x depth bin. Identical prompts
    (a document that fits, or retrieval picking the first window) are generated once."""
    rows = [r for r in read_jsonl(test_path) if r["task"] == LONG_TASK]
    if not rows:
        raise InputError(f"{test_path}: task: no {LONG_TASK} rows to evaluate")
    edges = list(depth_edges)
    picked = stratified_sample(rows, items, edges, seed)
    hf_tokenizer = load_tokenizer(base_dir)
    backend = hf_tokenizer.backend_tokenizer
    cells = []
    for row in picked:
        lc = long_context_doc(row, f"{test_path}:{row['id']}")
        for w in windows:
            for arm, p in window_prompts(
                row, lc, template, hf_tokenizer, backend, w, stride_fraction, bm25_k1, bm25_b
            ).items():
                cells.append(
                    {
                        "id": row["id"],
                        "lang": row["lang"],
                        "depth": row_depth(row),
                        "depth_bin": depth_bin(row_depth(row), edges),
                        "answer": lc["answer"],
                        "window": w,
                        "arm": arm,
                        **p,
                    }
                )
    unique = sorted({c["prompt"] for c in cells})
    model = load_model(base_dir)
    started = time.perf_counter()
    generated = generate_batched(
        model, hf_tokenizer, unique, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False
    )
    elapsed = time.perf_counter() - started
    by_prompt = dict(zip(unique, generated))
    out_rows = []
    for c in cells:
        g = by_prompt[c["prompt"]]
        out_rows.append(
            {k: v for k, v in c.items() if k != "prompt"}
            | {
                "prediction": g["text"],
                "tokens_in": g["tokens_in"],
                "tokens_out": g["tokens_out"],
                "correct": contains_answer(g["text"], c["answer"]),
            }
        )
    write_jsonl(out_generations, out_rows)
    picked_bins = [depth_bin(row_depth(r), edges) for r in picked]
    summary = {
        "items": len(picked),
        "windows": list(windows),
        "template": template,
        "metric": "normalised gold answer contained in the normalised prediction (lmlab.data.metrics.contains_answer)",
        "decoding": decoding_settings(max_new_tokens, batch_size),
        "cells": len(cells),
        "unique_prompts": len(unique),
        "prompt_tokens": int(sum(len(backend.encode(p, add_special_tokens=False).ids) for p in unique)),
        "accuracy": _accuracy_rows(out_rows, windows, n_resamples, seed),
        "items_per_depth_bin": {d: picked_bins.count(d) for d in sorted(set(picked_bins))},
    }
    write_json(out_json, summary)
    if timing_path:
        write_json(
            timing_path,
            {
                "generate_seconds": elapsed,
                "unique_prompts": len(unique),
                "seconds_per_prompt": elapsed / max(1, len(unique)),
                "load_average_1m": os.getloadavg()[0],
                "cpu_count": os.cpu_count(),
            },
        )
    return summary
