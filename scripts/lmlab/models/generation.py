"""The inference engine of every stage: batched greedy generation and teacher-forced scoring.

Both take prompts as text, tokenise them without special tokens, sort them by length and
form batches under a token budget (one long document does not pad fifteen short prompts to
its length), and return results in the caller's order.

Generation is greedy with the KV cache, stopped at EOS, left-padded. Prompts of one call that
share a token prefix (the agent's few-shot transcript, a system prompt, judge instructions)
have that prefix encoded once: its KV cache is copied to every row of every batch, the
suffixes are left-padded after it (pads masked out; position ids come from the attention
mask, so each real token keeps the position it has without the cache). Outputs equal plain
`model.generate` one prompt at a time on the same weights (tests/test_models_generation.py).

Scoring (`continuation_nll`) runs the decoder once per batch and applies the output head only
where a continuation token is predicted: on a 49k vocabulary the head is a fifth of the
model, and the prompt positions need none of it. A generation call can also score a
continuation of every prompt (an evaluation cell's gold answers) on the prompts' own KV cache,
cropped back after decoding: the prompt, most of the tokens, is then read once for both.
"""

import copy
import time

from tqdm.auto import tqdm

# A shared prefix shorter than this is not worth a separate forward pass and cache copies.
MIN_SHARED_PREFIX = 16
# Padded tokens (rows x longest input, new tokens included) per batch: the engine's default.
MAX_BATCH_TOKENS = 8192
# Padded over real tokens a batch may reach: beyond it the padding costs more than a batch saves.
MAX_PADDING = 1.5


def token_budget_batches(order, lengths, batch_size, max_tokens=MAX_BATCH_TOKENS, max_padding=MAX_PADDING):
    """Consecutive batches of `order` (indices sorted by length) of at most `batch_size` items,
    at most `max_tokens` padded tokens (items x longest) and at most `max_padding` times the
    batch's real tokens once padded, but never empty: one long document pads no short prompt
    to its length."""
    batches, batch = [], []
    for i in order:
        width = max([lengths[j] for j in batch] + [lengths[i]])
        padded = (len(batch) + 1) * width
        real = sum(lengths[j] for j in batch) + lengths[i]
        if batch and (len(batch) >= batch_size or padded > max_tokens or padded > max_padding * real):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def shared_prefix_length(sequences):
    """Tokens every sequence starts with, leaving each at least one token of its own (the
    token whose logits start generation)."""
    if len(sequences) < 2:
        return 0
    limit = min(len(s) for s in sequences) - 1
    n = 0
    first = sequences[0]
    while n < limit and all(s[n] == first[n] for s in sequences[1:]):
        n += 1
    return n


def _row_budgets(prompt_width, budgets, device):
    """A stopping criterion that marks a row finished once it has generated its own budget
    (HF generate pads finished rows while the others go on). transformers is imported here so
    that importing this module stays light for the steps that only read results."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    limits = torch.tensor(budgets, device=device)

    class RowBudget(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return (input_ids.shape[1] - prompt_width) >= limits

    return StoppingCriteriaList([RowBudget()])


def _shared_prefix(model, encoded, device, store):
    """(prefix ids, its KV cache, computed now?): the longest stored prefix every prompt
    extends, else the prompts' common prefix when it is long enough (then stored)."""
    import torch

    for key in sorted(store or (), key=len, reverse=True):
        if all(len(ids) > len(key) and tuple(ids[: len(key)]) == key for ids in encoded):
            return list(key), store[key], False
    n_prefix = shared_prefix_length(encoded)
    if n_prefix < MIN_SHARED_PREFIX:
        return [], None, False
    prefix = encoded[0][:n_prefix]
    with torch.inference_mode():
        cache = model(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
    if store is not None:
        store[tuple(prefix)] = cache
    return prefix, cache, True


def generate_batched(
    model,
    tokenizer,
    prompts,
    max_new_tokens=32,
    batch_size=16,
    max_input_tokens=None,
    progress=True,
    stop_strings=None,
    max_batch_tokens=MAX_BATCH_TOKENS,
    share_prefix=True,
    prefix_store=None,
    continuations=None,
):
    """Return one dict per prompt: text, tokens_in, tokens_out, truncated, latency_s,
    stopped_at_eos, prefix_tokens (tokens of it read from the shared-prefix cache),
    prefix_computed (whether this call ran the prefix's forward pass).

    `continuations` (one text per prompt, e.g. gold answers) adds continuation_nll and
    continuation_tokens: the mean NLL (nats per token) of the continuation after the prompt
    exactly as it was sent (truncation included), computed on the batch's prompt cache
    (cache_continuation_nll), so no prompt is read twice.

    `max_new_tokens` is one budget for all prompts or a list with one per prompt: prompts are
    then ordered by (budget, length), so a batch holds rows of similar budgets, and a row stops
    at its own budget (its text is what a call with that budget alone gives: greedy decoding
    of a row does not depend on the others). Decoding cost on a CPU is mostly per step, not
    per row, so one batch of sixteen beats four batches of four.


    `prefix_store` (a dict the caller keeps between calls) holds the prefix caches of earlier
    calls: an agent's every turn starts with the same instructions and transcript, and a call
    whose prompts all start with a stored prefix reads it from there.

    `max_input_tokens` truncates each prompt from the left (keeps the end, where the question
    and the response header are), and sets `truncated` when it did.
    """
    import torch

    tokenizer.padding_side = "left"
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    truncated = [False] * len(prompts)
    if max_input_tokens:
        for i, ids in enumerate(encoded):
            if len(ids) > max_input_tokens:
                encoded[i] = ids[-max_input_tokens:]
                truncated[i] = True
    budgets = list(max_new_tokens) if isinstance(max_new_tokens, (list, tuple)) else [max_new_tokens] * len(prompts)
    if len(budgets) != len(prompts):
        raise ValueError(f"{len(budgets)} max_new_tokens for {len(prompts)} prompts")
    scored = None
    if continuations is not None:
        if len(continuations) != len(prompts):
            raise ValueError(f"{len(continuations)} continuations for {len(prompts)} prompts")
        scored = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in continuations]
        for text, ids in zip(continuations, scored):
            if not ids:
                raise ValueError(f"continuation has no tokens: {text!r}")
    order = sorted(range(len(prompts)), key=lambda i: (budgets[i], len(encoded[i]), i))
    results = [None] * len(prompts)
    device = next(model.parameters()).device
    eos_ids = model.generation_config.eos_token_id or tokenizer.eos_token_id
    eos_set = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
    prefix, cache, computed = _shared_prefix(model, encoded, device, prefix_store) if share_prefix else ([], None, False)
    n_prefix = len(prefix)
    widths = [len(ids) + budget for ids, budget in zip(encoded, budgets)]
    batches = token_budget_batches(order, widths, batch_size, max_batch_tokens)
    for batch in tqdm(batches, desc="generate", disable=not progress, mininterval=5):
        inputs = tokenizer.pad(
            {"input_ids": [encoded[i][n_prefix:] for i in batch]}, padding=True, return_tensors="pt"
        ).to(device)
        kwargs = {}
        if n_prefix:
            rows = len(batch)
            head = torch.tensor([prefix] * rows, device=device)
            inputs = {
                "input_ids": torch.cat([head, inputs["input_ids"]], dim=1),
                "attention_mask": torch.cat([torch.ones_like(head), inputs["attention_mask"]], dim=1),
            }
            kwargs["past_key_values"] = copy.deepcopy(cache)
            kwargs["past_key_values"].batch_repeat_interleave(rows)
        row_budgets = [budgets[i] for i in batch]
        if len(set(row_budgets)) > 1:
            kwargs["stopping_criteria"] = _row_budgets(inputs["input_ids"].shape[1], row_budgets, device)
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                **kwargs,
                max_new_tokens=max(row_budgets),
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=eos_ids,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
                return_dict_in_generate=True,
            )
            nll = None
            if scored is not None:
                nll = cache_continuation_nll(model, inputs, output.past_key_values, [scored[i] for i in batch],
                                             tokenizer.pad_token_id)
        latency = (time.perf_counter() - start) / len(batch)
        new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
        for row, i in enumerate(batch):
            ids = new_tokens[row, : budgets[i]].tolist()
            n_out = len(ids)
            for pos, tok in enumerate(ids):
                if tok in eos_set:
                    n_out = pos + 1
                    break
            text = tokenizer.decode(ids[:n_out], skip_special_tokens=True).strip()
            for stop in stop_strings or ():
                if stop in text:
                    text = text[: text.index(stop)].rstrip()
            results[i] = {
                "text": text,
                "tokens_in": len(encoded[i]),
                "tokens_out": n_out,
                "truncated": truncated[i],
                "latency_s": latency,
                "stopped_at_eos": n_out < len(ids) or (n_out > 0 and ids[n_out - 1] in eos_set),
                "prefix_tokens": n_prefix,
                "prefix_computed": computed,
            }
            if nll is not None:
                results[i]["continuation_nll"], results[i]["continuation_tokens"] = nll[row], len(scored[i])
    return results


def cache_continuation_nll(model, inputs, cache, continuations, pad_id):
    """Mean NLL of each row's continuation after its (left-padded) prompt in `inputs`, read
    from `cache`, the KV cache generate left behind: it is cropped to the prompt minus its
    last token, and that token is fed again followed by the continuation (right-padded), so
    its logits predict the first continuation token. Position ids continue each row's real
    prompt length, the positions the tokens have after the prompt alone; the padding at the
    end is never attended to by a real token. Equals continuation_nll on the same prompt ids
    up to float rounding (tests/test_models_generation.py)."""
    import torch

    prompt_ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
    width = prompt_ids.shape[1]
    device = prompt_ids.device
    if cache.get_seq_length() > width - 1:
        cache.crop((width - 1) - cache.get_seq_length())  # a negative count drops the newest tokens
    longest = max(len(c) for c in continuations)
    ids = torch.full((len(continuations), longest + 1), pad_id if pad_id is not None else 0, dtype=torch.long)
    tail_mask = torch.zeros_like(ids)
    ids[:, 0] = prompt_ids[:, -1].cpu()
    tail_mask[:, 0] = 1
    for row, cont in enumerate(continuations):
        ids[row, 1 : len(cont) + 1] = torch.tensor(cont)
        tail_mask[row, 1 : len(cont) + 1] = 1
    ids, tail_mask = ids.to(device), tail_mask.to(device)
    start = prompt_mask.sum(dim=1, keepdim=True) - 1
    positions = start + torch.arange(longest + 1, device=device).unsqueeze(0)
    mask = torch.cat([prompt_mask[:, :-1], tail_mask], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True).logits.float()
    nll = []
    for row, cont in enumerate(continuations):
        target = torch.tensor(cont, device=device)
        loss = torch.nn.functional.cross_entropy(logits[row, : len(cont)], target, reduction="sum")
        nll.append(float(loss) / len(cont))
    return nll


def prompt_tokens_computed(results):
    """Prompt tokens the model ran a forward pass over for one generate_batched call: the
    shared prefix once (none when it came from an earlier call's store), then every prompt's
    own tokens."""
    if not results:
        return 0
    n_prefix = results[0]["prefix_tokens"]
    return n_prefix * results[0]["prefix_computed"] + sum(r["tokens_in"] - n_prefix for r in results)


def continuation_nll(model, tokenizer, prompts, continuations, batch_size=8, max_length=None,
                     max_batch_tokens=4096):
    """Per-item mean NLL (nats per token) of each continuation given its prompt.

    Prompt and continuation are tokenised separately (no special tokens) and concatenated,
    so the continuation tokens are exactly the scored span. Batches are right-padded (real
    tokens keep positions 0..L-1 without position_ids bookkeeping). `max_length` cuts
    prompts from the left, as generation does. Returns one {"nll", "tokens"} per item, in
    input order, where `tokens` counts the scored tokens (with an empty prompt the first
    token has no context and is not scored; a one-token continuation then gets NaN). The
    model's train/eval mode is restored.
    """
    import torch

    if len(prompts) != len(continuations):
        raise ValueError(f"prompts and continuations differ in length: {len(prompts)} != {len(continuations)}")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    items = []
    for prompt, text in zip(prompts, continuations):
        prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        text_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not text_ids:
            raise ValueError(f"continuation has no tokens: {text!r}")
        if max_length is not None:
            if len(text_ids) >= max_length:
                raise ValueError(f"continuation alone has {len(text_ids)} tokens >= max_length {max_length}")
            prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(text_ids) - max_length) :]
        items.append((prompt_ids, text_ids))

    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]) + len(items[i][1]), i))
    results = [None] * len(items)
    device = next(model.parameters()).device
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            lengths = [len(p) + len(g) for p, g in items]
            for batch in token_budget_batches(order, lengths, batch_size, max_batch_tokens):
                width = max(lengths[i] for i in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    ids = items[i][0] + items[i][1]
                    input_ids[r, : len(ids)] = torch.tensor(ids)
                    attention[r, : len(ids)] = 1
                hidden = decoder(input_ids=input_ids.to(device), attention_mask=attention.to(device)).last_hidden_state
                for r, i in enumerate(batch):
                    prompt_ids, text_ids = items[i]
                    # Token t is predicted from position t-1; the first token without a prompt has no predictor.
                    first = max(len(prompt_ids), 1)
                    end = len(prompt_ids) + len(text_ids)
                    if first >= end:
                        results[i] = {"nll": float("nan"), "tokens": 0}
                        continue
                    logits = head(hidden[r, first - 1 : end - 1]).float()
                    target = input_ids[r, first:end].to(device)
                    nll = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
                    results[i] = {"nll": float(nll) / (end - first), "tokens": end - first}
    finally:
        model.train(was_training)
    return results


def decoding_settings(max_new_tokens, batch_size, max_input_tokens=None):
    """What every generation log records, so cells can be checked for identical decoding."""
    return {
        "strategy": "greedy",
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "max_input_tokens": max_input_tokens,
        "sorted_by_length": True,
        "padding_side": "left",
    }
