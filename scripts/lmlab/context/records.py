"""Per-example records of the context study (datasets -> rows of templates.tsv,
truncation.tsv and windows.tsv): token lengths per template, keep-the-beginning truncation
per window, and sliding windows with the retriever over long-context documents.
"""

from lmlab.models.templates import render_completion, render_prompt
from lmlab.context.examples import (
    DATASET_KINDS,
    LONG_TASK,
    SFT_DATASETS,
    as_instruction,
    depth_bin,
    long_context_doc,
    prompt_doc_offset,
    row_depth,
)
from lmlab.context.retriever import located_terms, retrieve_top1, terms, window_passages
from lmlab.context.tokenizers import encode_batch, example_group
from lmlab.context.windows import (
    char_span_to_tokens,
    doc_stride,
    span_survives,
    truncation,
    window_cost,
    window_starts,
    windows_holding,
)

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
                base = prompt_doc_offset(prompt, lc["doc"])
                span = char_span_to_tokens(offsets, base + lc["start"], base + lc["end"])
                record["answer_token_end"] = span[1]
                record["depth"] = row_depth(ex)
            records.append(record)
    return records


# ================================================================== truncation


def _truncation_row(example, n_tokens, window, target, survives):
    """One truncation.tsv row: `example` holds dataset, id, lang, task and label."""
    t = truncation(n_tokens, window)
    return {
        **example,
        "window": window,
        "tokens": t["tokens"],
        "lost": t["lost"],
        "fraction_lost": t["fraction_lost"],
        "truncated": t["truncated"],
        "target": target,
        "target_survives": survives,
    }


def truncation_records(template_recs, kb_rows, kb_counts, windows, template):
    """Per example x window: tokens, lost, fraction lost, and whether the target survives
    (long_context_qa: the answer span; other instruction data: the whole response; kb
    passages: no target)."""
    out = []
    items = [r for r in template_recs if r["template"] == template]
    for r in items:
        example = {k: r[k] for k in ("dataset", "id", "lang", "task", "label")}
        for w in windows:
            if r["answer_token_end"] is not None:
                target, survives = "answer", span_survives(r["answer_token_end"], w)
            else:
                target, survives = "response", span_survives(r["total_tokens"], w)
            out.append(_truncation_row(example, r["total_tokens"], w, target, survives))
    for row, n in zip(kb_rows, kb_counts):
        example = {"dataset": "kb", "id": row["id"], "lang": row["lang"], "task": "kb", "label": None}
        for w in windows:
            out.append(_truncation_row(example, n, w, None, None))
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
                "depth": row_depth(row),
                "depth_bin": depth_bin(row_depth(row), depth_edges),
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
            stride = doc_stride(budget, stride_fraction)
            starts = window_starts(n_doc, budget, stride)
            cost = window_cost(n_doc, budget, stride)
            top = retrieve_top1(query, window_passages(located, offsets, starts, budget), k1, b)
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
