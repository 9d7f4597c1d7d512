"""The gold answer's NLL: per-item mean NLL (nats per token) of each gold output given its
prompt under one model (rule evaluation_nll), and the token-weighted perplexity of such
rows.

lmlab.models imports torch only when a model is loaded or run, so importing this module
(stats uses `perplexity`) stays light.
"""

import math

from lmlab.core.io import read_jsonl, write_jsonl
from lmlab.models.base import load_model, load_tokenizer
from lmlab.models.generation import continuation_nll
from lmlab.models.templates import render_prompt


def gold_nll(model, tokenizer, prompts, golds, batch_size=8, max_length=None):
    """Per-item mean NLL (nats per token) of each gold output given its prompt, through the
    engine's teacher-forced scoring (lmlab.models.generation.continuation_nll): one
    {"gold_nll", "gold_tokens"} per item, in input order."""
    scored = continuation_nll(model, tokenizer, prompts, golds, batch_size=batch_size, max_length=max_length)
    return [{"gold_nll": r["nll"], "gold_tokens": r["tokens"]} for r in scored]


def perplexity(nll_rows):
    """Token-weighted corpus perplexity exp(sum nll*tokens / sum tokens) of gold_nll rows."""
    total_tokens = sum(r["gold_tokens"] for r in nll_rows)
    if total_tokens == 0:
        raise ValueError("perplexity of zero tokens")
    total = sum(r["gold_nll"] * r["gold_tokens"] for r in nll_rows if r["gold_tokens"])
    return math.exp(total / total_tokens)


def nll_for_model(items_path, base_dir, adapter_dir, out_path, *, model_name, template, constrained, context,
                  batch_size):
    """Rule evaluation_nll: per-item mean NLL (nats/token) of the gold output under the reference prompt."""
    items = read_jsonl(items_path)
    tokenizer = load_tokenizer(base_dir)
    model = load_model(base_dir, adapter_dir or None)
    prompts = [render_prompt(row, template, tokenizer, constrained) for row in items]
    golds = [row["output"] for row in items]
    results = gold_nll(model, tokenizer, prompts, golds, batch_size=batch_size, max_length=context)
    rows = [
        {"id": row["id"], "task": row["task"], "lang": row["lang"], "model": model_name, **res}
        for row, res in zip(items, results)
    ]
    write_jsonl(out_path, rows)
    return rows
