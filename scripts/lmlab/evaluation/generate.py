"""Generation of one evaluation cell: every test item through one (model, prompt, context)
with the same greedy, batched decoding, one row per item with what the model saw and what
it cost.

lmlab.models imports torch and transformers only when a model is loaded, so importing this
module stays light.
"""

import logging
import time

from lmlab.core.io import read_jsonl, write_json, write_jsonl
from lmlab.models.base import load_model, load_tokenizer, model_hash
from lmlab.models.generation import decoding_settings, generate_batched
from lmlab.models.templates import render_prompt

log = logging.getLogger(__name__)


def max_new_tokens_for(task, max_new_tokens):
    """Per-task generation budget; `default` covers tasks not listed."""
    return int(max_new_tokens.get(task, max_new_tokens["default"]))


def prompt_as_sent(tokenizer, prompt, max_input_tokens):
    """(text the model saw, untruncated prompt tokens): the prompt cut from the left to
    `max_input_tokens`, as generate_batched cuts it."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if max_input_tokens and len(ids) > max_input_tokens:
        return tokenizer.decode(ids[-max_input_tokens:], skip_special_tokens=False), len(ids)
    return prompt, len(ids)


def generate_cell(
    items_path,
    base_dir,
    adapter_dir,
    out_path,
    timing_path,
    *,
    model_name,
    prompt_name,
    template,
    constrained,
    context,
    max_new_tokens,
    batch_size,
):
    """Rule evaluation_generate: one row per test item for one (model, prompt, context) cell.

    Greedy decoding through lmlab.models.generation.generate_batched, one call for all items,
    each with its task's max_new_tokens (batches group similar budgets); identical settings in
    every cell apart from the cell's own factors. Rows: id, task, lang, meta, instruction, input, prompt (as sent, i.e. cut from
    the left when truncated), prompt_tokens (before the cut), prediction, gold, gold_nll
    and gold_tokens (mean NLL in nats per token of the gold answer after the prompt as sent,
    and its token count), tokens_in, tokens_out, truncated, stopped_at_eos, decoding, model, prompt_name,
    template, constrained, context, base_hash, adapter_hash. The cell's wall-clock seconds go
    to `timing_path`.
    """
    items = read_jsonl(items_path)
    tokenizer = load_tokenizer(base_dir)
    model = load_model(base_dir, adapter_dir or None)
    hashes = model_hash(base_dir, adapter_dir or None)
    prompts = [render_prompt(row, template, tokenizer, constrained) for row in items]
    budgets = [max_new_tokens_for(row["task"], max_new_tokens) for row in items]
    started = time.perf_counter()
    # The gold answers are scored on the cache of the prompts as sent, in the same pass (gold_nll).
    outputs = generate_batched(model, tokenizer, prompts, max_new_tokens=budgets, batch_size=batch_size,
                               max_input_tokens=context, progress=False,
                               continuations=[row["output"] for row in items])
    results = list(zip(outputs, budgets))
    rows = []
    for row, prompt, (out, budget) in zip(items, prompts, results):
        sent, prompt_tokens = prompt_as_sent(tokenizer, prompt, context)
        rows.append(
            {
                "id": row["id"],
                "task": row["task"],
                "lang": row["lang"],
                "meta": row.get("meta") or {},
                "instruction": row["instruction"],
                "input": row.get("input", ""),
                "prompt": sent,
                "prompt_tokens": prompt_tokens,
                "prediction": out["text"],
                "gold": row["output"],
                "gold_nll": out["continuation_nll"],
                "gold_tokens": out["continuation_tokens"],
                "tokens_in": out["tokens_in"],
                "tokens_out": out["tokens_out"],
                "truncated": out["truncated"],
                "stopped_at_eos": bool(out["stopped_at_eos"]),
                "decoding": decoding_settings(budget, batch_size, context),
                "model": model_name,
                "prompt_name": prompt_name,
                "template": template,
                "constrained": bool(constrained),
                "context": int(context),
                "base_hash": hashes["base"],
                "adapter_hash": hashes.get("adapter"),
            }
        )
    write_jsonl(out_path, rows)
    elapsed = time.perf_counter() - started
    tokens = sum(r["tokens_out"] for r in rows)
    # Wall clock apart from the rows, so the generations are byte-identical across reruns.
    write_json(timing_path, {"generate_s": elapsed, "n": len(rows), "tokens_out": tokens,
                             "latency_s_per_item": elapsed / max(len(rows), 1)})
    log.info("%s/%s/ctx%s: %d items, %d new tokens in %.1f s (%.1f tokens/s)",
             model_name, prompt_name, context, len(rows), tokens, elapsed, tokens / max(elapsed, 1e-9))
    return rows
