"""Context-window study: token lengths per template, truncation, sliding windows with a
lexical retriever, and long-context QA accuracy per window.

Conventions used throughout (and stated in the paper):

- Truncation keeps the *beginning* (`truncation=True`, `truncation_side="right"`, the
  Hugging Face default): a sequence of n tokens in a window of W keeps tokens [0, W) and
  loses max(0, n - W). A span survives only if all of its tokens lie before the cut, i.e.
  its exclusive end token index is <= W.
- Sliding windows of size W with stride S start at 0, S, 2S, ... while the window still
  fits, plus one last window aligned to the end of the sequence when the regular starts
  leave a tail uncovered; a sequence of n <= W tokens is one window. Overlap cost is the
  number of token positions processed beyond n.
- For QA the context window W bounds the whole prompt: the document gets the budget
  W - (prompt tokens that are not document), so the question and the answer header
  always fit ("document truncation"), and a sliding window over the document has that
  budget as its size.
"""

import bisect
import logging
import math
import os
import re
import time
import unicodedata
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_json, write_jsonl, write_tsv
from lmlab.evaluation.metrics import contains_answer
from lmlab.models.templates import render_completion, render_prompt
from lmlab.context.tokenizers import (
    distribution,
    encode_batch,
    example_group,
    example_text,
    fertility_rows,
    load_backend,
    make_counter,
    words,
)

log = logging.getLogger(__name__)

# Dataset name -> kind, in the order every table lists them.
DATASET_KINDS = {
    "sft_train": "sft",
    "sft_validation": "sft",
    "sft_test": "sft",
    "preferences_train": "preferences",
    "preferences_test": "preferences",
    "kb": "kb",
    "agent_tasks": "agent_tasks",
}
SFT_DATASETS = ("sft_train", "sft_validation", "sft_test")
LONG_TASK = "long_context_qa"


# ================================================================== arithmetic


def truncation(n_tokens, window):
    """Keep-the-beginning truncation of n tokens to a window of W tokens."""
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    kept = min(n_tokens, window)
    lost = n_tokens - kept
    return {
        "tokens": n_tokens,
        "kept": kept,
        "lost": lost,
        "fraction_lost": lost / n_tokens if n_tokens else 0.0,
        "truncated": lost > 0,
    }


def span_survives(span_end, window):
    """A token span [start, span_end) survives keep-the-beginning truncation to `window`
    iff all its tokens come before the cut."""
    return span_end <= window


def window_starts(n_tokens, window, stride):
    """Start offsets of sliding windows (see the module docstring for the convention)."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got {window}, {stride}")
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would skip tokens")
    if n_tokens <= window:
        return [0]
    starts = list(range(0, n_tokens - window + 1, stride))
    if starts[-1] + window < n_tokens:
        starts.append(n_tokens - window)
    return starts


def window_cost(n_tokens, window, stride):
    """{windows, tokens_processed, overlap_tokens} of covering n tokens with sliding windows."""
    starts = window_starts(n_tokens, window, stride)
    processed = sum(min(window, n_tokens - s) for s in starts)
    return {"windows": len(starts), "tokens_processed": processed, "overlap_tokens": processed - n_tokens}


def windows_holding(span, starts, window):
    """Indices of the windows that contain the whole token span [start, end)."""
    start, end = span
    return [i for i, s in enumerate(starts) if s <= start and end <= s + window]


def char_span_to_tokens(offsets, char_start, char_end):
    """Token span [first, end) of the tokens whose character offsets overlap
    [char_start, char_end); offsets are (start, end) per token, as from a fast tokenizer."""
    hits = [i for i, (s, e) in enumerate(offsets) if s < char_end and e > char_start]
    if not hits:
        raise ValueError(f"no token overlaps characters [{char_start}, {char_end})")
    return hits[0], hits[-1] + 1


# ================================================================== retriever


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=None)
def _term(word):
    # casefold + strip accents (NFKD, drop combining marks): "Pimentón" -> "pimenton".
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text):
    """Retrieval terms: word runs, casefolded, accents stripped."""
    return [_term(w) for w in _WORD.findall(text)]


def located_terms(text):
    """(starts, ends, terms) of the words of `text`, so windows can take their terms by
    character range without re-normalising the text (words are sorted, non-overlapping)."""
    matches = list(_WORD.finditer(text))
    return [m.start() for m in matches], [m.end() for m in matches], [_term(m.group()) for m in matches]


def terms_between(located, char_start, char_end):
    """Terms of the words lying wholly inside [char_start, char_end)."""
    starts, ends, words_ = located
    return words_[bisect.bisect_left(starts, char_start) : bisect.bisect_right(ends, char_end)]


def bm25_scores(query, passages, k1=1.2, b=0.75):
    """Okapi BM25 score of each passage for the query; the passages are the corpus (IDF is
    computed over them, with the Lucene +1 so it is never negative). Query and passages are
    texts or already-made term lists."""
    query_terms = terms(query) if isinstance(query, str) else list(query)
    docs = [terms(p) if isinstance(p, str) else list(p) for p in passages]
    n = len(docs)
    avg_len = (sum(len(d) for d in docs) / n) if n else 0.0
    df = defaultdict(int)
    for d in docs:
        for term in set(d):
            df[term] += 1
    scores = []
    for d in docs:
        tf = defaultdict(int)
        for term in d:
            tf[term] += 1
        score = 0.0
        for term in query_terms:
            if not tf.get(term):
                continue
            idf = math.log((n - df[term] + 0.5) / (df[term] + 0.5) + 1.0)
            norm = tf[term] + k1 * (1 - b + b * len(d) / avg_len)
            score += idf * tf[term] * (k1 + 1) / norm
        scores.append(score)
    return scores


def retrieve_top1(query, passages, k1=1.2, b=0.75):
    """Index of the best BM25 passage; ties go to the earliest passage."""
    scores = bm25_scores(query, passages, k1, b)
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


# ================================================================== examples


def load_datasets(paths):
    """{name: rows} for every dataset name in DATASET_KINDS that `paths` has."""
    return {name: read_jsonl(paths[name]) for name in DATASET_KINDS if name in paths}


def as_instruction(row, kind):
    """The (instruction, input, output) view of a row that the templates render, or None
    for kb passages (documents, not instructions)."""
    if kind == "sft":
        return row
    if kind == "preferences":
        return {**row, "instruction": row["prompt"], "input": "", "output": row["chosen"], "meta": {}}
    if kind == "agent_tasks":
        return {**row, "instruction": row["question"], "input": "", "output": row["answer"], "meta": {}}
    return None


def long_context_doc(row, where):
    """Document, question and answer char span of a long_context_qa row (checked)."""
    meta = row.get("meta") or {}
    doc = row.get("input", "")
    answer = str(meta.get("answer", ""))
    start = meta.get("answer_char_start")
    if not answer or not isinstance(start, int) or doc[start : start + len(answer)] != answer:
        raise InputError(f"{where}: meta.answer_char_start: does not point at meta.answer in input")
    return {"doc": doc, "question": row["instruction"], "answer": answer, "start": start, "end": start + len(answer)}


def depth_bin(depth, edges):
    """Label of the depth bin holding `depth` (bins [e_i, e_i+1), the last one closed)."""
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= depth < hi or (hi == edges[-1] and depth == hi):
            return f"{lo:.2f}-{hi:.2f}"
    raise ValueError(f"depth {depth} outside the bins {edges}")


def _prompt_doc_offset(prompt, doc):
    """Where the (stripped) document starts inside a rendered prompt."""
    stripped = doc.strip()
    at = prompt.find(stripped)
    if at < 0:
        raise ValueError("the rendered prompt does not contain the document verbatim")
    return at - (len(doc) - len(doc.lstrip()))


# ================================================================== template lengths


def template_records(datasets, templates, hf_tokenizer, backend):
    """One record per (instruction example, template): prompt/response/total tokens under
    the base tokenizer, the template overhead, and (long_context_qa) the answer's tokens.

    Prompt and response are tokenized as one text (as a model sees them); the response
    starts at the first token that ends after the prompt's last character. The overhead
    is total minus the tokens of instruction, input and output tokenized on their own.
    """
    examples = []
    for name, rows in datasets.items():
        kind = DATASET_KINDS[name]
        for line, row in enumerate(rows, start=1):
            ex = as_instruction(row, kind)
            if ex is not None:
                examples.append((name, kind, line, ex))
    raw_parts = []
    for _, _, _, ex in examples:
        raw_parts += [ex["instruction"], ex.get("input", ""), ex["output"]]
    raw_counts = [len(ids) for ids in encode_batch(backend, raw_parts)]
    records = []
    for template in templates:
        prompts = [render_prompt(ex, template, hf_tokenizer) for _, _, _, ex in examples]
        completions = [render_completion(ex, template, hf_tokenizer) for _, _, _, ex in examples]
        encodings = backend.encode_batch([p + c for p, c in zip(prompts, completions)], add_special_tokens=False)
        for i, ((name, kind, line, ex), prompt, enc) in enumerate(zip(examples, prompts, encodings)):
            offsets = enc.offsets
            total = len(offsets)
            cut = len(prompt)
            response_start = next((t for t, (_, e) in enumerate(offsets) if e > cut), total)
            raw = sum(raw_counts[3 * i : 3 * i + 3])
            record = {
                "dataset": name,
                "id": ex["id"],
                "lang": ex["lang"],
                "task": example_group(ex, kind),
                "label": (ex.get("meta") or {}).get("label") if ex.get("task") == "sentiment" else None,
                "template": template,
                "prompt_tokens": response_start,
                "response_tokens": total - response_start,
                "total_tokens": total,
                "raw_tokens": raw,
                "overhead_tokens": total - raw,
                "answer_token_end": None,
                "depth": None,
            }
            if kind == "sft" and ex["task"] == LONG_TASK:
                lc = long_context_doc(ex, f"{name}:{line}")
                base = _prompt_doc_offset(prompt, lc["doc"])
                span = char_span_to_tokens(offsets, base + lc["start"], base + lc["end"])
                record["answer_token_end"] = span[1]
                record["depth"] = float(ex["meta"]["depth"])
            records.append(record)
    return records


# ================================================================== truncation


def truncation_records(template_recs, kb_rows, kb_counts, windows, template):
    """Per example x window: tokens, lost, fraction lost, and whether the target survives
    (long_context_qa: the answer span; other instruction data: the whole response; kb
    passages: no target)."""
    out = []
    items = [r for r in template_recs if r["template"] == template]
    for r in items:
        for w in windows:
            t = truncation(r["total_tokens"], w)
            if r["answer_token_end"] is not None:
                target, survives = "answer", span_survives(r["answer_token_end"], w)
            else:
                target, survives = "response", span_survives(r["total_tokens"], w)
            out.append(
                {
                    "dataset": r["dataset"],
                    "id": r["id"],
                    "lang": r["lang"],
                    "task": r["task"],
                    "label": r["label"],
                    "window": w,
                    "tokens": t["tokens"],
                    "lost": t["lost"],
                    "fraction_lost": t["fraction_lost"],
                    "truncated": t["truncated"],
                    "target": target,
                    "target_survives": survives,
                }
            )
    for row, n in zip(kb_rows, kb_counts):
        for w in windows:
            t = truncation(n, w)
            out.append(
                {
                    "dataset": "kb",
                    "id": row["id"],
                    "lang": row["lang"],
                    "task": "kb",
                    "label": None,
                    "window": w,
                    "tokens": n,
                    "lost": t["lost"],
                    "fraction_lost": t["fraction_lost"],
                    "truncated": t["truncated"],
                    "target": None,
                    "target_survives": None,
                }
            )
    return out


def truncation_groups(records, stats):
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
    order = sorted(groups, key=lambda k: (_dataset_order(k[0]), k[1] != "all", k[1], k[2]))
    for dataset, task, w in order:
        recs = groups[(dataset, task, w)]
        k = sum(r["truncated"] for r in recs)
        share = stats.wilson_interval(k, len(recs))
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


def _dataset_order(name):
    order = list(DATASET_KINDS) + ["sft", "all"]
    return order.index(name) if name in order else len(order)


def truncation_bias(records, windows, stats):
    """Is truncation biased? For each window, a test of the truncated share across SFT tasks
    and across sentiment classes (all SFT splits pooled), with per-group Wilson intervals."""
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
            test = stats.proportion_difference_test({g: tuple(counts[g]) for g in sorted(counts)})
            out.append({"window": w, "factor": factor, **test})
    return out


# ================================================================== sliding windows


def window_records(datasets, template, hf_tokenizer, backend, windows, stride_fraction, depth_edges, k1, b):
    """Per long-context document x window: document budget, window count, overlap cost,
    answer survival under document truncation, in the retrieved window, in any window."""
    items = []
    for name in SFT_DATASETS:
        for line, row in enumerate(datasets.get(name, []), start=1):
            if row["task"] == LONG_TASK:
                items.append((name, row, long_context_doc(row, f"{name}:{line}")))
    if not items:
        return []
    doc_enc = backend.encode_batch([lc["doc"] for _, _, lc in items], add_special_tokens=False)
    prompt_lens = [
        len(ids) for ids in encode_batch(backend, [render_prompt(row, template, hf_tokenizer) for _, row, _ in items])
    ]
    out = []
    for (name, row, lc), enc, prompt_len in zip(items, doc_enc, prompt_lens):
        offsets = enc.offsets
        n_doc = len(offsets)
        span = char_span_to_tokens(offsets, lc["start"], lc["end"])
        overhead = prompt_len - n_doc
        located, query = located_terms(lc["doc"]), terms(lc["question"])
        for w in windows:
            budget = w - overhead
            rec = {
                "dataset": name,
                "id": row["id"],
                "lang": row["lang"],
                "depth": float(row["meta"]["depth"]),
                "depth_bin": depth_bin(float(row["meta"]["depth"]), depth_edges),
                "window": w,
                "doc_tokens": n_doc,
                "prompt_overhead": overhead,
                "doc_budget": max(budget, 0),
                "answer_token_start": span[0],
                "answer_token_end": span[1],
            }
            if budget <= 0:
                rec.update(
                    windows=0,
                    stride=0,
                    tokens_in_windows=0,
                    overlap_tokens=0,
                    retrieved=None,
                    truncation_survives=False,
                    retrieval_survives=False,
                    any_window_survives=False,
                    model_tokens_retrieval=0,
                    model_tokens_all_windows=0,
                )
                out.append(rec)
                continue
            stride = max(1, int(budget * stride_fraction))
            starts = window_starts(n_doc, budget, stride)
            cost = window_cost(n_doc, budget, stride)
            passages = [terms_between(located, offsets[s][0], offsets[min(s + budget, n_doc) - 1][1]) for s in starts]
            top = retrieve_top1(query, passages, k1, b)
            holding = windows_holding(span, starts, budget)
            rec.update(
                windows=cost["windows"],
                stride=stride,
                tokens_in_windows=cost["tokens_processed"],
                overlap_tokens=cost["overlap_tokens"],
                retrieved=top,
                truncation_survives=span_survives(span[1], budget),
                retrieval_survives=top in holding,
                any_window_survives=bool(holding),
                model_tokens_retrieval=overhead + min(budget, n_doc),
                model_tokens_all_windows=cost["windows"] * overhead + cost["tokens_processed"],
            )
            out.append(rec)
    return out


def survival_groups(records, stats):
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
            ci = stats.wilson_interval(sum(r[f"{arm}_survives"] for r in recs), len(recs))
            row[f"{arm}_survives"] = ci["estimate"]
            row[f"{arm}_low"] = ci["low"]
            row[f"{arm}_high"] = ci["high"]
        row["windows_mean"] = float(np.mean([r["windows"] for r in recs]))
        row["overlap_tokens_mean"] = float(np.mean([r["overlap_tokens"] for r in recs]))
        row["doc_tokens_mean"] = float(np.mean([r["doc_tokens"] for r in recs]))
        rows.append(row)
    return rows


# ================================================================== cost


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

    names = [n for n in DATASET_KINDS if any(e["dataset"] == n for e in examples)]
    for name in names:
        idx = [i for i, e in enumerate(examples) if e["dataset"] == name]
        for tok, toks in counts.items():
            add(name, "tokenizer", tok, [toks[i] for i in idx])
        for t in sorted({r["template"] for r in template_recs}, key=_template_key(template_recs)):
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


def _template_key(recs):
    order = []
    for r in recs:
        if r["template"] not in order:
            order.append(r["template"])
    return order.index


# ================================================================== the stats step


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
):
    """Everything of the study that needs no model run. Writes into `out_dir` the per-example
    tables examples.tsv (words, bytes, tokens per tokenizer), templates.tsv (tokens per
    template), truncation.tsv (per example x window), windows.tsv (per long-context document
    x window), and stats.json (aggregates and tests).
    Wall-clock measurements go to `timing_path` only, so `out_dir` is byte-identical
    across runs. `max_rows` > 0 keeps the first rows of each file (quick test runs)."""
    from lmlab.core import stats
    from lmlab.models.base import load_tokenizer

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
    counts = {}
    for tok in ("regex", "chars", "bytes"):
        counts[tok] = make_counter(tok)(texts)
    for tok, backend in backends.items():
        started = time.perf_counter()
        counts[tok] = make_counter(tok, backend)(texts)
        elapsed = time.perf_counter() - started
        timing[f"tokenize_{tok}"] = {"examples": len(texts), "seconds": elapsed, "examples_per_s": len(texts) / elapsed}
    fertility = fertility_rows(examples, counts)

    # ---- 2. templates
    started = time.perf_counter()
    template_recs = template_records(datasets, templates, hf_tokenizer, base_backend)
    elapsed = time.perf_counter() - started
    timing["templates"] = {
        "examples": len(template_recs),
        "seconds": elapsed,
        "examples_per_s": len(template_recs) / elapsed,
    }
    template_rows = []
    for t in templates:
        for name in [n for n in DATASET_KINDS if n in datasets] + ["all"]:
            recs = [r for r in template_recs if r["template"] == t and (name == "all" or r["dataset"] == name)]
            if not recs:
                continue
            row = {"template": t, "dataset": name, "examples": len(recs)}
            for field in ("prompt_tokens", "response_tokens", "total_tokens", "overhead_tokens"):
                d = distribution([r[field] for r in recs])
                for stat in ("mean", "p10", "p50", "p90"):
                    row[f"{field.replace('_tokens', '')}_{stat}"] = d[stat]
            template_rows.append(row)

    # ---- 3. truncation
    kb_rows = datasets.get("kb", [])
    kb_counts = [counts["base"][i] for i, e in enumerate(examples) if e["dataset"] == "kb"]
    trunc_recs = truncation_records(template_recs, kb_rows, kb_counts, windows, template)
    trunc_rows = truncation_groups(trunc_recs, stats)
    bias = truncation_bias(trunc_recs, windows, stats)
    class_rows = []
    for w in windows:
        sent = [r for r in trunc_recs if r["window"] == w and r["task"] == "sentiment" and r["dataset"] in SFT_DATASETS]
        for label in sorted({r["label"] for r in sent if r["label"]}):
            recs = [r for r in sent if r["label"] == label]
            ci = stats.wilson_interval(sum(r["truncated"] for r in recs), len(recs))
            class_rows.append(
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

    # ---- 4. sliding windows + retrieval
    win_recs = window_records(
        datasets, template, hf_tokenizer, base_backend, windows, stride_fraction, list(depth_edges), bm25_k1, bm25_b
    )
    survival = survival_groups(win_recs, stats) if win_recs else []

    # ---- 6. cost
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


# ================================================================== accuracy vs window


def stratified_sample(rows, n, depth_edges, seed):
    """Up to n rows, taken round-robin over depth bins (rows shuffled within a bin with
    `seed`), so every answer depth is represented equally."""
    import random

    bins = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        bins[depth_bin(float(row["meta"]["depth"]), depth_edges)].append(row)
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
    stride = max(1, int(budget * stride_fraction))
    starts = window_starts(n_doc, budget, stride)

    def text_of(start, size):
        end = min(start + size, n_doc)
        return lc["doc"][offsets[start][0] : offsets[end - 1][1]]

    located = located_terms(lc["doc"])
    passages = [terms_between(located, offsets[s][0], offsets[min(s + budget, n_doc) - 1][1]) for s in starts]
    top = retrieve_top1(lc["question"], passages, k1, b)
    for arm, start in (("truncation", 0), ("retrieval", starts[top])):
        size = budget
        while size > 0:
            prompt, n = _fit_prompt(row, text_of(start, size), template, hf_tokenizer, backend)
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
    from lmlab.core import stats
    from lmlab.models.generation import decoding_settings, generate_batched
    from lmlab.models.base import load_model, load_tokenizer

    rows = [r for r in read_jsonl(test_path) if r["task"] == LONG_TASK]
    if not rows:
        raise InputError(f"{test_path}: task: no {LONG_TASK} rows to evaluate")
    picked = stratified_sample(rows, items, list(depth_edges), seed)
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
                        "depth": float(row["meta"]["depth"]),
                        "depth_bin": depth_bin(float(row["meta"]["depth"]), list(depth_edges)),
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
    results = []
    for arm in ("truncation", "retrieval"):
        for w in windows:
            for d in ["all"] + sorted({c["depth_bin"] for c in out_rows}):
                sel = [r for r in out_rows if r["arm"] == arm and r["window"] == w and d in ("all", r["depth_bin"])]
                if not sel:
                    continue
                ci = stats.bootstrap_ci([float(r["correct"]) for r in sel], n_resamples=n_resamples, seed=seed)
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
    summary = {
        "items": len(picked),
        "windows": list(windows),
        "template": template,
        "metric": "normalised gold answer contained in the normalised prediction (lmlab.evaluation.metrics.contains_answer)",
        "decoding": decoding_settings(max_new_tokens, batch_size),
        "cells": len(cells),
        "unique_prompts": len(unique),
        "prompt_tokens": int(sum(len(backend.encode(p, add_special_tokens=False).ids) for p in unique)),
        "accuracy": results,
        "items_per_depth_bin": {
            d: sum(1 for r in picked if depth_bin(float(r["meta"]["depth"]), list(depth_edges)) == d)
            for d in sorted({depth_bin(float(r["meta"]["depth"]), list(depth_edges)) for r in picked})
        },
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


# ================================================================== report: tables, figures, summary

# Paper tables (results/context/tables/<name>.tsv) and figures (figures/<name>.png|pdf);
# names carry the stage prefix because the paper copies every stage's files into one folder.
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
FIGURES = (
    "context_lengths_tokenizers",
    "context_lengths_templates",
    "context_truncation",
    "context_survival",
    "context_accuracy",
    "context_bpb",
)


def _finite(obj):
    """JSON-safe copy: non-finite floats (Fisher's odds ratio of a zero cell) become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _ci(estimate, low, high, n):
    return {"estimate": estimate, "low": low, "high": high, "n": n}


def _num(value):
    return None if value in ("", None) else float(value)


def _pick(rows, **where):
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def _one(rows, **where):
    hits = _pick(rows, **where)
    if len(hits) != 1:
        raise ValueError(f"expected one row for {where}, found {len(hits)}")
    return hits[0]


def _save(fig, figures_dir, name):
    fig.savefig(Path(figures_dir) / f"{name}.png", dpi=150)
    # A fixed creation date keeps the PDF byte-stable across runs.
    fig.savefig(Path(figures_dir) / f"{name}.pdf", metadata={"CreationDate": None})


def _figures(stats_, examples, templates_, accuracy, bpb_results, figures_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.core.format import apply_style

    apply_style(plt)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)

    # Lengths per tokenizer: tokens per SFT training example, log-spaced bins.
    train = [e for e in examples if e["dataset"] == "sft_train"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    values = {tok: [int(e[f"tokens_{tok}"]) for e in train] for tok in stats_["tokenizers"]}
    low = max(1, min(min(v) for v in values.values()))
    top = max(max(v) for v in values.values())
    bins = np.logspace(math.log10(low), math.log10(top + 1), 40)
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
    low = max(1, min(int(r["total_tokens"]) for r in recs))
    top = max(int(r["total_tokens"]) for r in recs)
    bins = np.logspace(math.log10(low), math.log10(top + 1), 40)
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
        rs = sorted(_pick(rows, task=task), key=lambda r: r["window"])
        x = np.array([r["window"] for r in rs]) * (1 + 0.02 * (i - len(tasks) / 2))
        y = np.array([r["truncated_share"] for r in rs])
        err = [y - [r["truncated_low"] for r in rs], [r["truncated_high"] for r in rs] - y]
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
        rs = _pick(survival, window=w)
        x = np.arange(len(rs))
        for arm, style in (("truncation", "o-"), ("retrieval", "s--")):
            y = np.array([r[f"{arm}_survives"] for r in rs])
            err = [y - [r[f"{arm}_low"] for r in rs], [r[f"{arm}_high"] for r in rs] - y]
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
        rs = sorted(_pick(accuracy["accuracy"], arm=arm, depth_bin="all"), key=lambda r: r["window"])
        y = np.array([r["estimate"] for r in rs])
        err = [y - [r["low"] for r in rs], [r["high"] for r in rs] - y]
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


def context_report(
    stats_dir,
    accuracy_json,
    bpb_jsons,
    timing_jsons,
    tokenizer_infos,
    out_summary,
    tables_dir,
    figures_dir,
):
    """Paper tables, figures and summary.json of the context stage, from the outputs of
    context_stats, context_accuracy and context_bpb (`bpb_jsons`: {tokenizer: path})."""
    from lmlab.core.io import read_json, read_tsv

    stats_dir = Path(stats_dir)
    stats_ = read_json(stats_dir / "stats.json")
    examples = read_tsv(stats_dir / "examples.tsv")
    templates_ = read_tsv(stats_dir / "templates.tsv")
    accuracy = read_json(accuracy_json)
    bpb_results = [read_json(p) for _, p in bpb_jsons.items()]
    timing = {name: read_json(p) for name, p in timing_jsons.items()}
    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)

    fert = stats_["fertility"]
    columns_fert = [
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
    write_tsv(tables_dir / "context_tokenizers.tsv", _pick(fert, dataset="all", task="all"), columns_fert)
    by_task = [r for r in fert if r["dataset"] == "sft_train" and r["task"] != "all" and r["lang"] != "all"]
    write_tsv(tables_dir / "context_tokenizers_by_task.tsv", by_task, ["tokenizer", "task"] + columns_fert[1:])
    write_tsv(tables_dir / "context_templates.tsv", stats_["template_lengths"])
    trunc_paper = [r for r in stats_["truncation"] if r["task"] == "all" or r["dataset"] == "sft"]
    write_tsv(tables_dir / "context_truncation.tsv", trunc_paper)
    bias_rows = []
    for t in stats_["truncation_bias"]:
        for g in t["groups"]:
            bias_rows.append(
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
                }
            )
    write_tsv(tables_dir / "context_truncation_bias.tsv", bias_rows)
    write_tsv(tables_dir / "context_windows.tsv", stats_["survival"])
    acc_rows = [{k: v for k, v in r.items()} for r in accuracy["accuracy"]]
    write_tsv(tables_dir / "context_accuracy.tsv", acc_rows)
    write_tsv(tables_dir / "context_cost.tsv", stats_["cost"])
    bpb_rows = [
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
    write_tsv(tables_dir / "context_bpb.tsv", bpb_rows)
    _figures(stats_, examples, templates_, accuracy, bpb_results, figures_dir)

    # ---- summary: every number the section cites
    def fert_of(tok, lang="all"):
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

    langs = sorted({r["lang"] for r in fert if r["lang"] != "all"})
    tokenizers = {tok: {lang: fert_of(tok, lang) for lang in ["all"] + langs} for tok in stats_["tokenizers"]}
    sft_templates = {
        r["template"]: {
            k: r[k] for k in ("prompt_mean", "response_mean", "total_mean", "total_p50", "total_p90", "overhead_mean")
        }
        for r in stats_["template_lengths"]
        if r["dataset"] == "sft_train"
    }
    truncation = {}
    for w in stats_["windows"]:
        sft_all = _one(stats_["truncation"], dataset="sft", task="all", window=w)
        everything = _one(stats_["truncation"], dataset="all", task="all", window=w)
        lcqa = _one(stats_["truncation"], dataset="sft", task=LONG_TASK, window=w)
        truncation[str(w)] = {
            "sft_truncated": _ci(
                sft_all["truncated_share"], sft_all["truncated_low"], sft_all["truncated_high"], sft_all["examples"]
            ),
            "all_truncated": _ci(
                everything["truncated_share"],
                everything["truncated_low"],
                everything["truncated_high"],
                everything["examples"],
            ),
            "sft_response_survives": sft_all["target_survives"],
            "long_context_truncated": lcqa["truncated_share"],
            "long_context_answer_survives": lcqa["target_survives"],
            "bias_task_p": next(
                (t["p_value"] for t in stats_["truncation_bias"] if t["window"] == w and t["factor"] == "task"), None
            ),
            "bias_task_test": next(
                (t["test"] for t in stats_["truncation_bias"] if t["window"] == w and t["factor"] == "task"), None
            ),
            "bias_label_p": next(
                (
                    t["p_value"]
                    for t in stats_["truncation_bias"]
                    if t["window"] == w and t["factor"] == "sentiment_label"
                ),
                None,
            ),
            "bias_label_test": next(
                (t["test"] for t in stats_["truncation_bias"] if t["window"] == w and t["factor"] == "sentiment_label"),
                None,
            ),
        }
    windows = {}
    for r in stats_["survival"]:
        if r["depth_bin"] != "all":
            continue
        windows[str(r["window"])] = {
            "truncation": _ci(r["truncation_survives"], r["truncation_low"], r["truncation_high"], r["documents"]),
            "retrieval": _ci(r["retrieval_survives"], r["retrieval_low"], r["retrieval_high"], r["documents"]),
            "any_window": _ci(r["any_window_survives"], r["any_window_low"], r["any_window_high"], r["documents"]),
            "windows_mean": r["windows_mean"],
            "overlap_tokens_mean": r["overlap_tokens_mean"],
            "doc_tokens_mean": r["doc_tokens_mean"],
        }
    acc = {}
    for r in accuracy["accuracy"]:
        if r["depth_bin"] == "all":
            acc.setdefault(r["arm"], {})[str(r["window"])] = {k: r[k] for k in ("estimate", "low", "high", "n")} | {
                "answer_in_context": r["answer_in_context"],
                "tokens_in_mean": r["tokens_in_mean"],
            }
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
    # ---- the numbers the prose picks out (chosen by fixed rules, not by looking at results)
    windows_list = stats_["windows"]
    bias_window = windows_list[len(windows_list) // 2]
    bias_rows_w = [
        r for r in stats_["truncation"] if r["dataset"] == "sft" and r["task"] != "all" and r["window"] == bias_window
    ]
    top_task = max(bias_rows_w, key=lambda r: (r["truncated_share"], r["task"])) if bias_rows_w else None
    bpe_names = sorted(stats_["bpe"], key=lambda n: stats_["bpe"][n]["vocab_size"])
    cost = stats_["cost"]
    train_examples = [e for e in examples if e["dataset"] == "sft_train"]
    key = {
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
            (t["window"] for t in stats_["truncation_bias"] if t["factor"] == "sentiment_label" and t["test"] != "none"),
            default=None,
        ),
    }
    w_acc = str(key["largest_accuracy_window"])
    w_big = str(key["largest_window"])
    headline = (
        f"In the context study, keep-the-beginning truncation at {key['largest_window']} tokens leaves the long-context "
        f"answer in {windows[w_big]['truncation']['estimate']:.0%} of documents and sliding windows with BM25 retrieval in "
        f"{windows[w_big]['retrieval']['estimate']:.0%}; the base model's long-context accuracy at {w_acc} tokens is "
        f"{acc['truncation'][w_acc]['estimate']:.0%} with truncation and {acc['retrieval'][w_acc]['estimate']:.0%} "
        f"with retrieval, and under the same token budget the {best_bpb} tiny LM reaches the lowest bits per byte "
        f"({bpb[best_bpb]['bits_per_byte']:.2f})."
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
        "truncation": truncation,
        "truncation_by_class": {
            str(w): {
                r["label"]: _ci(r["truncated_share"], r["truncated_low"], r["truncated_high"], r["examples"])
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
        # Wall-clock numbers: the only values that differ between identical runs.
        "timing": timing,
    }
    write_json(out_summary, _finite(summary))
    return summary
