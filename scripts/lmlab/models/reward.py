"""Scoring with a learned reward model: the base loaded as a 1-label sequence classifier with
the reward LoRA merged, the input fitting every user of a reward model shares, and the
pairwise outcome of two scores.

The reward model reads the rendered prompt + response + EOS (the same strings DPO and ORPO
train on) and returns one scalar, taken at the last non-pad token. SmolLM2's pad token is its
EOS, so that is the last response token. Over `max_length` tokens, the input keeps the start
of the response (at most half the budget) and the end of the prompt (`rm_input_ids`), in
training (lmlab.alignment.reward), held-out scoring, RLOO's reward callback and the
evaluation judge alike, so all four agree.
"""

import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

from lmlab.models.base import load_tokenizer, pick_device_dtype


def load_reward_model(base_dir, adapter_dir, device=None, dtype=None):
    """(model, tokenizer): the base as a 1-label sequence classifier + the reward LoRA, eval mode."""
    if device is None or dtype is None:
        device, dtype = pick_device_dtype()
    tokenizer = load_tokenizer(adapter_dir, padding_side="right")
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    model = PeftModel.from_pretrained(model, adapter_dir)
    model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model, tokenizer


def rm_input_ids(tokenizer, prompt, response, max_length):
    """Token ids of prompt + response + EOS, fitted into max_length: the response keeps its
    start (at most max_length // 2 tokens, EOS last), the prompt its end."""
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if not response_ids or response_ids[-1] != eos:
        response_ids = response_ids + [eos]
    budget = max_length // 2
    if len(response_ids) > budget:
        response_ids = response_ids[: budget - 1] + [eos]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    room = max_length - len(response_ids)
    return (prompt_ids[-room:] if room > 0 else []) + response_ids


def reward_scores(model, tokenizer, prompts, responses, max_length, batch_size=16):
    """One float per (prompt, response): the reward model's score of rm_input_ids, in input order.

    Batches are formed in length order (less padding: one long text no longer pads a whole
    batch to its length); right padding leaves every real token's score unchanged."""
    device = next(model.parameters()).device
    sequences = [rm_input_ids(tokenizer, p, r, max_length) for p, r in zip(prompts, responses)]
    order = sorted(range(len(sequences)), key=lambda i: (len(sequences[i]), i))
    scores = [None] * len(sequences)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
            attention[row, : len(sequences[i])] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
        for i, value in zip(chunk, logits[:, 0].float().cpu()):
            scores[i] = float(value)
    return scores


def pairwise_outcome(score_chosen, score_rejected):
    """1 if the chosen response scores higher, 0.5 on a tie, 0 otherwise."""
    if score_chosen > score_rejected:
        return 1.0
    if score_chosen == score_rejected:
        return 0.5
    return 0.0
