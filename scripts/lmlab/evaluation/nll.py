"""The gold answer's NLL: per-item mean NLL (nats per token) of each gold output given its
prompt under one model (rule evaluation_nll), batched under a token budget, and the
token-weighted perplexity of such rows.

lmlab.models and `gold_nll` import torch only when a model is loaded or run, so importing
this module stays light.
"""

import math

from lmlab.core.io import read_jsonl, write_jsonl
from lmlab.models.base import load_model, load_tokenizer
from lmlab.models.templates import render_prompt


def token_budget_batches(order, lengths, batch_size, max_tokens=4096):
    """Consecutive batches of `order` (indices sorted by length) of at most `batch_size` items
    and at most `max_tokens` padded tokens (items x longest), but never empty: one long
    document no longer pads seven short ones to its length."""
    batches, batch = [], []
    for i in order:
        width = max([lengths[j] for j in batch] + [lengths[i]])
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * width > max_tokens):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def gold_nll(model, tokenizer, prompts, golds, batch_size=8, max_length=None):
    """Per-item mean NLL (nats per token) of each gold continuation given its prompt.

    Prompt and gold are tokenised separately (no special tokens) and concatenated, so the
    gold tokens are exactly the scored span. Batches are right-padded (real tokens keep
    positions 0..L-1 without position_ids bookkeeping); labels are -100 on the prompt and
    on padding. `max_length` cuts prompts from the left, as generation does. Returns one
    {"gold_nll", "gold_tokens"} per item, in input order, where `gold_tokens` counts the
    scored tokens (with an empty prompt the first gold token has no context and is not
    scored; a one-token gold then gets NaN). The model's train/eval mode is restored.
    """
    # torch is imported here, not at the top, so that stats can use `perplexity` without it.
    import torch

    if len(prompts) != len(golds):
        raise ValueError(f"prompts and golds differ in length: {len(prompts)} != {len(golds)}")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    items = []
    for prompt, gold in zip(prompts, golds):
        prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        gold_ids = list(tokenizer(gold, add_special_tokens=False)["input_ids"])
        if not gold_ids:
            raise ValueError(f"gold has no tokens: {gold!r}")
        if max_length is not None:
            if len(gold_ids) >= max_length:
                raise ValueError(
                    f"gold alone has {len(gold_ids)} tokens >= max_length {max_length}"
                )
            prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(gold_ids) - max_length) :]
        items.append((prompt_ids, gold_ids))

    # Sorting by length keeps padding per batch small; results go back in input order.
    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]) + len(items[i][1]), i))
    results = [None] * len(items)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in token_budget_batches(order, [len(p) + len(g) for p, g in items], batch_size):
                width = max(len(items[i][0]) + len(items[i][1]) for i in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                for r, i in enumerate(batch):
                    prompt_ids, gold_ids = items[i]
                    ids = prompt_ids + gold_ids
                    input_ids[r, : len(ids)] = torch.tensor(ids)
                    attention[r, : len(ids)] = 1
                    labels[r, len(prompt_ids) : len(ids)] = torch.tensor(gold_ids)
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device)
                ).logits
                # Token t is predicted from position t-1.
                shift_logits = logits[:, :-1, :].float()
                shift_labels = labels[:, 1:].to(device)
                token_nll = torch.nn.functional.cross_entropy(
                    shift_logits.reshape(-1, shift_logits.size(-1)),
                    shift_labels.reshape(-1),
                    ignore_index=-100,
                    reduction="none",
                ).view(shift_labels.shape)
                scored = shift_labels != -100
                sums = (token_nll * scored).sum(dim=1)
                counts = scored.sum(dim=1)
                for r, i in enumerate(batch):
                    n_tokens = int(counts[r])
                    if n_tokens == 0:
                        # An empty prompt leaves the first gold token without a predictor.
                        results[i] = {"gold_nll": float("nan"), "gold_tokens": 0}
                    else:
                        results[i] = {
                            "gold_nll": float(sums[r]) / n_tokens,
                            "gold_tokens": n_tokens,
                        }
    finally:
        model.train(was_training)
    return results


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
