"""Preference pairs for alignment: shipped pairs, on-policy sampling and pairs, the training prompts.

Two sources of (prompt, chosen, rejected) pairs feed the reward model, DPO and ORPO:
  - shipped: `preferences_train.jsonl`, hand-built pairs labelled with a failure mode;
  - on-policy: k samples per training prompt (a seeded subset of `sft_train`) drawn from the
    SFT model, scored against the gold answer (`gold_score`), and paired best-vs-worst when
    the score margin clears a threshold (`build_onpolicy_pairs`).
Every prompt is rendered with the SFT adapter's template (`lmlab.models.templates`), so the
policy sees the same strings it was instruction-tuned on. A shipped pair's prompt is one
string; it is rendered as the instruction of a row with no input (for the chat template:
one user message). The scores that rank samples are `lmlab.alignment.scoring`'s.
"""

import logging
import random
from collections import Counter

import torch

from lmlab.alignment.scoring import gold_score
from lmlab.core.io import read_jsonl, write_json, write_jsonl
from lmlab.data.tasks import FAILURE_MODES
from lmlab.models.base import load_model, load_tokenizer
from lmlab.models.templates import render_prompt
from lmlab.training.outputs import count_by

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- rendering


def render_pair_prompt(prompt, task, template, tokenizer):
    """A shipped pair's one-string prompt under the SFT template (chat: one user message)."""
    return render_prompt({"instruction": prompt, "input": "", "task": task}, template, tokenizer)


def prompt_tokens(tokenizer, text):
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def load_shipped_pairs(path, template, tokenizer, limit=None, seed=0, max_prompt_tokens=None):
    """(pairs, n_too_long): shipped pairs as training rows.

    Pairs whose rendered prompt is over `max_prompt_tokens` are left out first; `limit` then
    keeps a seeded subset (in file order).
    """
    rows = []
    too_long = 0
    for r in read_jsonl(path):
        prompt = render_pair_prompt(r["prompt"], r["task"], template, tokenizer)
        if max_prompt_tokens and prompt_tokens(tokenizer, prompt) > max_prompt_tokens:
            too_long += 1
            continue
        rows.append(
            {
                "id": r["id"],
                "source": "shipped",
                "task": r["task"],
                "lang": r["lang"],
                "failure_mode": r["failure_mode"],
                "prompt_text": r["prompt"],
                "prompt": prompt,
                "chosen": r["chosen"],
                "rejected": r["rejected"],
            }
        )
    if limit is not None and limit < len(rows):
        keep = set(random.Random(seed).sample(range(len(rows)), limit))
        rows = [r for i, r in enumerate(rows) if i in keep]
    return rows, too_long


# --------------------------------------------------------------------------- on-policy pairs


def select_prompts(rows, n, seed, keep=None):
    """A seeded subset of n training rows, balanced over tasks (round-robin), in a fixed order.

    `keep(row)` may reject rows (e.g. prompts over a token limit); it is called only on rows
    that would otherwise be chosen. The on-policy sampler and both RLOO arms call this with
    the same arguments (through `training_prompts`), so they see the same prompts.
    """
    by_task = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    rng = random.Random(seed)
    queues = []
    for task in sorted(by_task):
        items = list(by_task[task])
        rng.shuffle(items)
        queues.append(items)
    chosen = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            while queue and len(chosen) < n:
                row = queue.pop(0)
                if keep is None or keep(row):
                    chosen.append(row)
                    break
    return chosen


def training_prompts(sft_train, n, seed, template, tokenizer, max_prompt_tokens=None):
    """(rows, rendered prompts): the alignment stage's training prompts from sft_train.

    Prompts longer than `max_prompt_tokens` (rendered) are skipped rather than cut, since
    cutting a long document can remove the answer; the tasks that remain are recorded.
    """
    def fits(row):
        if not max_prompt_tokens:
            return True
        text = render_prompt(row, template, tokenizer)
        return prompt_tokens(tokenizer, text) <= max_prompt_tokens

    rows = select_prompts(read_jsonl(sft_train), n, seed, keep=fits)
    return rows, [render_prompt(r, template, tokenizer) for r in rows]


def sample_completions(model, tokenizer, prompts, k, temperature, top_p, max_new_tokens, batch_size, seed=0):
    """k sampled completions per prompt: [[{text, tokens_out, stopped_at_eos}] * k] * len(prompts).

    Prompts are left-padded and batched in the given order; the generator is seeded once,
    so the same prompts, batch size and seed give the same samples on CPU. Every prompt has
    at least two tokens (a rendered template).
    """
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    eos_ids = model.generation_config.eos_token_id or tokenizer.eos_token_id
    eos_set = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(prompts), batch_size):
        encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start : start + batch_size]]
        inputs = tokenizer.pad({"input_ids": encoded}, padding=True, return_tensors="pt").to(device)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        with torch.inference_mode():
            # Each prompt is read once and its KV cache (all but the last token) copied to its k
            # samples; num_return_sequences would run the prompt's forward pass k times.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            cache = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                          use_cache=True).past_key_values
            cache.batch_repeat_interleave(k)
            generated = model.generate(
                input_ids=ids.repeat_interleave(k, dim=0),
                attention_mask=mask.repeat_interleave(k, dim=0),
                past_key_values=cache,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = generated[:, ids.shape[1] :]
        for i in range(len(encoded)):
            samples = []
            for j in range(k):
                ids = new_tokens[i * k + j].tolist()
                n_out = next((pos + 1 for pos, tok in enumerate(ids) if tok in eos_set), len(ids))
                samples.append(
                    {
                        "text": tokenizer.decode(ids[:n_out], skip_special_tokens=True).strip(),
                        "tokens_out": n_out,
                        "stopped_at_eos": n_out > 0 and ids[n_out - 1] in eos_set,
                    }
                )
            out.append(samples)
    return out


def build_onpolicy_pairs(samples, margin):
    """Best-vs-worst pair per prompt where the gold-score margin is at least `margin`.

    `samples`: rows {prompt_id, task, lang, prompt, sample_index, text, score, failure}, k per
    prompt. Ties in score keep the earlier sample as best and the later one as worst; a pair
    needs two different texts. The pair's failure mode is why the rejected sample lost.
    """
    by_prompt = {}
    for s in samples:
        by_prompt.setdefault(s["prompt_id"], []).append(s)
    pairs = []
    for prompt_id in sorted(by_prompt):
        group = sorted(by_prompt[prompt_id], key=lambda s: s["sample_index"])
        best = max(group, key=lambda s: s["score"])  # first maximum
        worst = min(reversed(group), key=lambda s: s["score"])  # last minimum
        gap = best["score"] - worst["score"]
        if gap < margin or gap <= 0 or best["text"].strip() == worst["text"].strip():
            continue
        pairs.append(
            {
                "id": f"onpolicy-{prompt_id}",
                "source": "onpolicy",
                "task": best["task"],
                "lang": best["lang"],
                "failure_mode": worst["failure"] or "factual_error",
                "prompt_text": best["prompt_text"],
                "prompt": best["prompt"],
                "chosen": best["text"],
                "rejected": worst["text"],
                "score_chosen": best["score"],
                "score_rejected": worst["score"],
                "margin": gap,
            }
        )
    return pairs


# --------------------------------------------------------------------------- steps


def sample_onpolicy(base_dir, sft_dir, sft_train, out_samples, template, prompts, k, temperature, top_p,
                    max_new_tokens, batch_size, max_prompt_tokens=None, seed=0):
    """Rule alignment_sample: k samples per selected sft_train prompt from the SFT model, gold-scored."""
    tokenizer = load_tokenizer(sft_dir)
    rows, rendered = training_prompts(sft_train, prompts, seed, template, tokenizer, max_prompt_tokens)
    model = load_model(base_dir, sft_dir)
    log.info("sampling %d x %d completions (temperature %.2f)", len(rows), k, temperature)
    sampled = sample_completions(model, tokenizer, rendered, k, temperature, top_p, max_new_tokens, batch_size,
                                 seed=seed)
    out = []
    for row, prompt, group in zip(rows, rendered, sampled):
        for j, sample in enumerate(group):
            out.append(
                {
                    "prompt_id": row["id"],
                    "task": row["task"],
                    "lang": row["lang"],
                    "prompt_text": row["instruction"],
                    "prompt": prompt,
                    "gold": row["output"],
                    "sample_index": j,
                    **sample,
                    **gold_score(row, sample["text"]),
                }
            )
    write_jsonl(out_samples, out)
    return out


def make_pairs(preferences_train, samples_path, base_dir, sft_dir, out_pairs, out_summary, template, sources,
               margin, max_shipped=None, max_prompt_tokens=None, seed=0):
    """Rule alignment_pairs: the training pairs of every pair-based method + pairs_summary.json."""
    tokenizer = load_tokenizer(sft_dir)
    pairs, summary = [], {"sources_used": list(sources), "template": template, "sft_adapter": str(sft_dir)}
    shipped_all = read_jsonl(preferences_train)
    shipped, too_long = load_shipped_pairs(preferences_train, template, tokenizer, max_shipped, seed,
                                           max_prompt_tokens)
    summary["max_prompt_tokens"] = max_prompt_tokens
    summary["shipped"] = {
        "available": len(shipped_all),
        "prompt_too_long": too_long,
        "pairs": len(shipped),
        "used": "shipped" in sources,
        "per_failure_mode": count_by(shipped, "failure_mode"),
        "per_task": count_by(shipped, "task"),
        "per_lang": count_by(shipped, "lang"),
    }
    samples = read_jsonl(samples_path)
    onpolicy = build_onpolicy_pairs(samples, margin)
    n_prompts = len({s["prompt_id"] for s in samples})
    summary["onpolicy"] = {
        "prompts": n_prompts,
        "samples": len(samples),
        "k": len(samples) // n_prompts if n_prompts else 0,
        "margin_threshold": margin,
        "pairs": len(onpolicy),
        "kept_rate": len(onpolicy) / n_prompts if n_prompts else 0.0,
        "used": "onpolicy" in sources,
        "sample_correct_rate": sum(s["correct"] for s in samples) / len(samples) if samples else 0.0,
        "sample_format_rate": sum(s["format_valid"] for s in samples) / len(samples) if samples else 0.0,
        "sample_mean_score": sum(s["score"] for s in samples) / len(samples) if samples else 0.0,
        "sample_failures": dict(sorted(Counter(s["failure"] or "none" for s in samples).items())),
        "mean_margin": sum(p["margin"] for p in onpolicy) / len(onpolicy) if onpolicy else 0.0,
        "per_failure_mode": count_by(onpolicy, "failure_mode"),
        "per_task": count_by(onpolicy, "task"),
        "per_lang": count_by(onpolicy, "lang"),
    }
    if "shipped" in sources:
        pairs += shipped
    if "onpolicy" in sources:
        pairs += onpolicy
    if not pairs:
        raise ValueError("no training pairs: every selected source is empty (lower alignment.onpolicy.margin?)")
    summary["total_pairs"] = len(pairs)
    summary["per_failure_mode"] = {m: sum(p["failure_mode"] == m for p in pairs) for m in FAILURE_MODES}
    summary["per_source"] = count_by(pairs, "source")
    write_jsonl(out_pairs, pairs)
    write_json(out_summary, summary)
    return summary
