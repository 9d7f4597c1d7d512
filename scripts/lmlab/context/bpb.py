"""Bits per byte: does the tokenizer change modelling quality?

A tiny Llama is trained from scratch on the SFT training text under each tokenizer, with
the same architecture outside the embeddings and the same compute budget in tokens
(steps x batch x block tokens), then scored on the validation text:

    bits per byte = (total NLL of the validation stream, in bits) / (its UTF-8 bytes)

Bytes do not depend on the tokenizer, so the numbers are comparable across vocabularies
(perplexities per token are not). The stream is `SEP doc_1 SEP doc_2 ... SEP doc_n`; every
token after the first SEP is scored once, and each scored SEP counts as one byte.
"""

import logging
import math
import os
import time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lmlab.core.io import read_jsonl, write_json
from lmlab.context.tokenizers import BPE_SPECIAL, encode_batch, load_backend, training_texts

log = logging.getLogger(__name__)

BYTE_SEP = 256  # the byte tokenizer's separator id (after the 256 byte values)


def byte_encoder():
    """(encode(texts) -> id lists, separator id, vocabulary size) of the UTF-8 byte tokenizer."""
    return (lambda texts: [list(t.encode("utf-8")) for t in texts]), BYTE_SEP, 257


def bpe_encoder(path):
    """The same triple for a trained tokenizer.json (separator = its <|endoftext|>)."""
    backend = load_backend(path)
    sep = backend.token_to_id(BPE_SPECIAL)
    if sep is None:
        raise ValueError(f"{path}: no {BPE_SPECIAL} token")

    return (lambda texts: encode_batch(backend, texts)), sep, backend.get_vocab_size(with_added_tokens=True)


def stream(encode, sep, texts):
    """One id stream `SEP doc_1 SEP doc_2 ...` as an int64 array."""
    ids = []
    for doc in encode(texts):
        ids.append(sep)
        ids.extend(doc)
    return np.asarray(ids, dtype=np.int64)


def stream_bytes(texts):
    """UTF-8 bytes scored in a stream of these texts: every document, plus one byte per SEP
    after the first."""
    return sum(len(t.encode("utf-8")) for t in texts) + max(0, len(texts) - 1)


def build_model(vocab_size, hidden_size, layers, heads, block_size, seed):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=block_size,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    return LlamaForCausalLM(config)


def parameter_counts(model):
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"total": int(total), "embedding": int(embedding), "non_embedding": int(total - embedding)}


def stream_nll(model, ids, block_size, batch_size=32):
    """Total NLL (nats) and count of the tokens ids[1:], scored with sliding windows of
    `block_size` and stride block_size // 2: each token is scored once, with at least half
    a block of context where the stream allows."""
    stride = max(1, block_size // 2)
    n = len(ids)
    spans = []  # (window start, window end, first scored position)
    scored_until = 1
    start = 0
    while scored_until < n:
        end = min(start + block_size, n)
        spans.append((start, end, scored_until))
        scored_until = end
        start = max(0, end - stride) if end < n else end
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(spans), batch_size):
            chunk = spans[i : i + batch_size]
            width = max(e - s for s, e, _ in chunk)
            x = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (s, e, _) in enumerate(chunk):
                x[row, : e - s] = torch.from_numpy(ids[s:e])
                mask[row, : e - s] = 1
            logits = model(input_ids=x, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            for row, (s, e, first) in enumerate(chunk):
                # position p of the window predicts token s + p + 1
                targets = torch.from_numpy(ids[first:e])
                pos = torch.arange(first - s - 1, e - s - 1)
                total -= float(logp[row, pos, targets].sum())
                count += len(targets)
    return total, count


def train_and_score(
    train_path,
    validation_path,
    tokenizer,
    out_json,
    tokenizer_path=None,
    steps=200,
    batch_size=16,
    block_size=128,
    hidden_size=64,
    layers=2,
    heads=4,
    lr=3e-3,
    validation_docs=0,
    seed=0,
    timing_path=None,
):
    """Train a tiny LM under `tokenizer` ("bytes" or a BPE tokenizer.json at
    `tokenizer_path`) and write its validation bits per byte to `out_json`; the first
    `validation_docs` validation rows are scored (0 = all)."""
    train_texts = training_texts(read_jsonl(train_path))
    val_texts = training_texts(read_jsonl(validation_path))
    if validation_docs:
        val_texts = val_texts[:validation_docs]
    encode, sep, vocab = byte_encoder() if tokenizer == "bytes" else bpe_encoder(tokenizer_path)
    train_ids = stream(encode, sep, train_texts)
    val_ids = stream(encode, sep, val_texts)
    model = build_model(vocab, hidden_size, layers, heads, block_size, seed)
    params = parameter_counts(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    rng = np.random.default_rng(seed)
    tokens_per_step = batch_size * block_size
    started = time.perf_counter()
    model.train()
    losses = []
    for step_i in range(steps):
        starts = rng.integers(0, len(train_ids) - block_size, size=batch_size)
        x = torch.from_numpy(np.stack([train_ids[s : s + block_size] for s in starts]))
        # HF shifts the labels itself: labels = inputs is the next-token loss.
        loss = model(input_ids=x, labels=x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step_i % 50 == 0:
            log.info("%s step %d loss %.3f", tokenizer, step_i, float(loss))
    train_seconds = time.perf_counter() - started
    nll, count = stream_nll(model, val_ids, block_size)
    val_bytes = stream_bytes(val_texts)
    train_bytes_per_token = stream_bytes(train_texts) / (len(train_ids) - 1)
    result = {
        "tokenizer": tokenizer,
        "vocab_size": int(vocab),
        "parameters": params,
        "budget": {
            "steps": steps,
            "batch_size": batch_size,
            "block_size": block_size,
            "tokens_per_step": tokens_per_step,
            "training_tokens": steps * tokens_per_step,
            "training_bytes_seen": round(steps * tokens_per_step * train_bytes_per_token),
            "rule": "same steps x batch x block tokens for every tokenizer",
        },
        "model": {"hidden_size": hidden_size, "layers": layers, "heads": heads, "lr": lr},
        "train_stream_tokens": int(len(train_ids)),
        "train_loss_last10": float(np.mean(losses[-10:])),
        "validation_tokens_scored": int(count),
        "validation_bytes": int(val_bytes),
        "validation_nll_nats": nll,
        "validation_bits": nll / math.log(2),
        "bits_per_byte": nll / math.log(2) / val_bytes,
        "bytes_per_token": val_bytes / count,
        "bits_per_token": nll / math.log(2) / count,
    }
    write_json(out_json, result)
    if timing_path:
        write_json(
            timing_path,
            {
                "train_seconds": train_seconds,
                "steps_per_s": steps / train_seconds,
                "load_average_1m": os.getloadavg()[0],
            },
        )
    return result
