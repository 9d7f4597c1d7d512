"""Batched, deterministic greedy generation: the one generation path of every stage.

Prompts are sorted by length (less padding per batch), left-padded, decoded greedily with
the KV cache, stopped at EOS, and returned in the caller's order with per-item token counts
and an evenly shared batch latency.
"""

import time

from tqdm.auto import tqdm


def generate_batched(
    model,
    tokenizer,
    prompts,
    max_new_tokens=32,
    batch_size=16,
    max_input_tokens=None,
    progress=True,
    stop_strings=None,
):
    """Return one dict per prompt: text, tokens_in, tokens_out, truncated, latency_s.

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
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
    results = [None] * len(prompts)
    device = next(model.parameters()).device
    eos_ids = model.generation_config.eos_token_id or tokenizer.eos_token_id
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="generate", disable=not progress, mininterval=5):
        inputs = tokenizer.pad(
            {"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt"
        ).to(device)
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=eos_ids,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
            )
        latency = (time.perf_counter() - start) / len(batch)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        for row, i in enumerate(batch):
            ids = new_tokens[row].tolist()
            n_out = len(ids)
            eos_set = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
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
            }
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
