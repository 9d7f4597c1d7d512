"""A reference DPO loss from real model log-probabilities, written out so it can be read and
checked against TRL's (test code: training uses TRL's DPOTrainer).

DPO (Rafailov et al., 2023) scores a completion y of prompt x by the implicit reward
r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)), where log pi(y|x) is the *sum* of the
completion tokens' log-probabilities, and minimises -log sigmoid(r(x, y_w) - r(x, y_l)).
`tests/test_alignment_dpo_loss.py` checks that these functions reproduce the loss TRL's DPOTrainer
computes on the same batch (TRL 1.16 computes it inline in `DPOTrainer._compute_loss`).

The tokenisation mirrors TRL's for string (non-conversational) prompts: EOS is appended to
each completion, the prompt and prompt+completion are tokenised without special tokens, and
the completion starts where the two token sequences diverge.
"""

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "hinge", "ipo")


def tokenize_pair(tokenizer, prompt, completion):
    """(input_ids, completion_mask) of prompt + completion (+ EOS), as Python lists."""
    if not completion.endswith(tokenizer.eos_token):
        completion = completion + tokenizer.eos_token
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    # Tokens may merge across the boundary; the completion starts where the two diverge.
    start = 0
    while start < min(len(prompt_ids), len(full_ids)) and prompt_ids[start] == full_ids[start]:
        start += 1
    return full_ids, [0] * start + [1] * (len(full_ids) - start)


def pad_batch(sequences, masks, pad_token_id):
    """Right-padded tensors: input_ids, attention_mask, completion_mask."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    completion = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, (ids, mask) in enumerate(zip(sequences, masks)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        completion[i, : len(mask)] = torch.tensor(mask)
    return input_ids, attention, completion


def completion_logps(model, input_ids, attention_mask, completion_mask):
    """Sum over completion tokens of log p(token | prefix), one value per sequence."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logits = logits[:, :-1].float()  # position t predicts token t + 1
    targets = input_ids[:, 1:]
    token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = completion_mask[:, 1:].to(token_logps.dtype)
    return (token_logps * mask).sum(dim=-1), mask.sum(dim=-1)


def dpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta=0.1,
    loss_type="sigmoid",
    chosen_lengths=None,
    rejected_lengths=None,
):
    """Per-pair losses and implicit rewards.

    sigmoid: -log sigmoid(beta * delta)            (the DPO paper)
    hinge:   relu(1 - beta * delta)                (SLiC)
    ipo:     (delta_per_token - 1 / (2 beta))^2    (IPO; TRL normalises each log-ratio by
                                                    the completion's token count)
    with delta = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)).
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    delta = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    elif loss_type == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("the ipo loss needs chosen_lengths and rejected_lengths")
        per_token = chosen_logratios / chosen_lengths.clamp(min=1) - rejected_logratios / rejected_lengths.clamp(min=1)
        losses = (per_token - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"loss_type {loss_type!r} is not one of {', '.join(LOSS_TYPES)}")
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return {
        "losses": losses,
        "loss": losses.mean(),
        "chosen_rewards": chosen_rewards,
        "rejected_rewards": rejected_rewards,
        "margins": chosen_rewards - rejected_rewards,
        "accuracies": (chosen_rewards > rejected_rewards).float(),
    }


def dpo_loss_from_models(policy, reference, tokenizer, prompts, chosen, rejected, beta=0.1, loss_type="sigmoid"):
    """The DPO loss of a batch of string pairs under two real models (policy with gradients)."""
    chosen_seqs = [tokenize_pair(tokenizer, p, c) for p, c in zip(prompts, chosen)]
    rejected_seqs = [tokenize_pair(tokenizer, p, r) for p, r in zip(prompts, rejected)]
    sequences = [s for s, _ in chosen_seqs + rejected_seqs]
    masks = [m for _, m in chosen_seqs + rejected_seqs]
    input_ids, attention, completion = pad_batch(sequences, masks, tokenizer.pad_token_id)
    device = next(policy.parameters()).device
    input_ids, attention, completion = input_ids.to(device), attention.to(device), completion.to(device)
    logps, lengths = completion_logps(policy, input_ids, attention, completion)
    with torch.no_grad():
        ref_logps, _ = completion_logps(reference, input_ids, attention, completion)
    n = len(prompts)
    return dpo_loss(
        logps[:n],
        logps[n:],
        ref_logps[:n],
        ref_logps[n:],
        beta=beta,
        loss_type=loss_type,
        chosen_lengths=lengths[:n],
        rejected_lengths=lengths[n:],
    )
