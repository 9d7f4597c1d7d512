"""Scoring with a learned reward model: the base loaded as a 1-label sequence classifier with
the reward LoRA merged, the input fitting every user of a reward model shares, the scores
(on the CPU through a prefix tree, so texts that share a prompt read it once), and the
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

    On the CPU the sequences go through a prefix tree (prefix_tree_scores): texts that share a
    prompt (a pair's chosen and rejected, every model's answer to one judged item, RLOO's
    completions of one prompt) read it once. Reading a prompt is compute-bound there, so one
    sequence at a time costs no more per token than a batch. On an accelerator, where a
    batch costs little more than one sequence, they go in length-sorted batches
    (batched_scores). Both give the same scores up to float rounding (tested)."""
    sequences = [rm_input_ids(tokenizer, p, r, max_length) for p, r in zip(prompts, responses)]
    if next(model.parameters()).device.type == "cpu" and has_classifier_layout(model):
        return prefix_tree_scores(model, tokenizer, sequences)
    return batched_scores(model, tokenizer, sequences, batch_size)


def has_classifier_layout(model):
    """A decoder with a separate `score` head (every transformers *ForSequenceClassification of
    a causal LM): what prefix_tree_scores needs to run the decoder on a cache."""
    return hasattr(model, "base_model") and hasattr(model, "score") and model.base_model is not model


def batched_scores(model, tokenizer, sequences, batch_size=16):
    """Scores of token sequences in length-sorted, right-padded batches (less padding: one long
    text does not pad a whole batch to its length); right padding leaves every real token's
    score unchanged."""
    device = next(model.parameters()).device
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


def prefix_tree_scores(model, tokenizer, sequences):
    """Scores of token sequences (rm_input_ids), sharing common prefixes.

    The same numbers as batched_scores on the same ids (read at the last non-pad
    token, where the sequence-classification head pools; SmolLM2's pad is its EOS, so the
    token before the final EOS), but the sequences form a prefix tree: every shared prefix
    runs once and each branch runs on top of its key-value cache, which is cropped back after
    the branch. One judged item's texts (every model's answer to the same prompt; the pair
    texts that share the request and differ in answer order and verdict) share most of their
    tokens, so this cuts the judge's cost several-fold. Needs has_classifier_layout.
    """
    if not has_classifier_layout(model):
        raise ValueError(f"{type(model).__name__}: no decoder + score head to score on a key-value cache")
    pad = tokenizer.pad_token_id
    ends = []
    for seq in sequences:
        kept = [i for i, t in enumerate(seq) if t != pad]
        ends.append(kept[-1] + 1 if kept else len(seq))
    device = next(model.parameters()).device
    scores = [None] * len(sequences)

    def run(ids, cache):
        out = model.base_model(input_ids=torch.tensor([ids], device=device), past_key_values=cache, use_cache=True)
        return out.last_hidden_state[:, -1], out.past_key_values

    def branch(members, start, cache):
        # Invariant: the members share sequence[:start], which `cache` holds, and each ends
        # after `start`. Extend the common prefix as far as every member goes on together.
        stop = min(ends[m] for m in members)
        lcp = start
        while lcp < stop and len({sequences[m][lcp] for m in members}) == 1:
            lcp += 1
        if lcp > start:
            hidden, cache = run(sequences[members[0]][start:lcp], cache)
            score = float(model.score(hidden)[0, 0].float())
            for m in members:
                if ends[m] == lcp:
                    scores[m] = score
        rest = [m for m in members if ends[m] > lcp]
        groups = {}
        for m in rest:
            groups.setdefault(sequences[m][lcp], []).append(m)
        for group in groups.values():
            branch(group, lcp, cache)
            if cache is not None and cache.get_seq_length() > lcp:
                cache.crop(lcp - cache.get_seq_length())  # a negative count drops the branch's tokens

    with torch.inference_mode():
        branch(list(range(len(sequences))), 0, None)
    return scores


def pairwise_outcome(score_chosen, score_rejected):
    """1 if the chosen response scores higher, 0.5 on a tie, 0 otherwise."""
    if score_chosen > score_rejected:
        return 1.0
    if score_chosen == score_rejected:
        return 0.5
    return 0.0
