"""Judging: win rates of each model over its baseline on the reference cell, judged by the
learned reward model of the alignment stage, as a scalar judge and as a position-sensitive
pairwise judge, raw and length-controlled.

This is the one evaluation module that needs torch and transformers at import (through
lmlab.models.reward and the reward model it runs).
"""

import logging
import time

from lmlab.models.reward import load_reward_model, pairwise_outcome, reward_scores
from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_json, write_jsonl
from lmlab.core.stats import length_controlled_win_rate, win_rate_from_judgements
from lmlab.evaluation.human import request_text
from lmlab.models.templates import render_prompt

log = logging.getLogger(__name__)

# The position-sensitive judge shows both answers in one text and asks for a verdict; the
# reward model scores the text once with each verdict, and the higher-scored verdict wins.
# The text is the user turn of the SFT template (lmlab.models.templates), so the reward model
# reads it the way it read its training prompts.
PAIR_INSTRUCTION = {
    "en": "Two assistants answered the same request. Which answer is better?",
    "es": "Dos asistentes respondieron a la misma petición. ¿Qué respuesta es mejor?",
}
PAIR_VERDICT = {"en": "The better answer is {label}.", "es": "La mejor respuesta es la {label}."}


def pair_text(row, answer_a, answer_b):
    """The judge's view of one pair: request, then Answer A and Answer B."""
    request = request_text(row)
    lang = row.get("lang", "en") if row.get("lang") in PAIR_INSTRUCTION else "en"
    return (
        f"{PAIR_INSTRUCTION[lang]}\n\n### Request:\n{request}\n\n"
        f"### Answer A:\n{answer_a.strip()}\n\n### Answer B:\n{answer_b.strip()}"
    )


def judge_texts(row, template, tokenizer, answers, pairs):
    """The (prompt, response) texts the judges score for one item: each model's answer to the
    item's prompt (scalar judge), and for each pair of models the pair text in both orders
    with each verdict (position judge). Returns (texts, keys)."""
    texts, keys = [], []
    prompt = render_prompt(row, template, tokenizer)
    for name, answer in answers.items():
        texts.append((prompt, answer))
        keys.append(("scalar", name))
    lang = row["lang"] if row["lang"] in PAIR_VERDICT else "en"
    for model_a, model_b in pairs:
        for order, (first, second) in (("ab", (model_a, model_b)), ("ba", (model_b, model_a))):
            judged = render_prompt(
                {"instruction": pair_text(row, answers[first], answers[second]), "input": "", "task": row["task"]},
                template,
                tokenizer,
            )
            for label in ("A", "B"):
                texts.append((judged, PAIR_VERDICT[lang].format(label=label)))
                keys.append(("position", model_a, model_b, order, label))
    return texts, keys


def judge_pair(items, gen_a, gen_b, reward_a, reward_b, position_scores, *, model_a, model_b, n_resamples,
               confidence, seed):
    """Win rate of model A over model B from the reward model's scores (see judge_all).

    Returns (result, per-item rows). `position_scores[id]` are the four scores of
    judge_texts (A first: verdict A, B; B first: verdict A, B); `reward_a/b[id]` the scalar
    rewards of each response.
    """
    if set(gen_a) != set(gen_b):
        raise InputError(f"{model_a} and {model_b}: generations cover different items")
    per_item = []
    for i in (i for i in items if i in gen_a):
        s = position_scores[i]
        # Order 1 shows A (model_a) first: model_a wins if verdict "A" scores higher.
        order1 = pairwise_outcome(s[0], s[1])
        # Order 2 shows model_b first: model_a (now "B") wins if verdict "B" scores higher.
        order2 = pairwise_outcome(s[3], s[2])
        # A scalar reward scores each response alone; judged as (a, b) and as (b, a) the
        # verdict is the same by construction, which order_agreement records.
        scalar_ab = pairwise_outcome(reward_a[i], reward_b[i])
        scalar_ba = 1.0 - pairwise_outcome(reward_b[i], reward_a[i])
        per_item.append(
            {
                "id": i,
                "task": items[i]["task"],
                "reward_a": reward_a[i],
                "reward_b": reward_b[i],
                "scalar_order_ab": scalar_ab,
                "scalar_order_ba": scalar_ba,
                "scalar": (scalar_ab + scalar_ba) / 2,
                "position_scores": list(s),
                "position_order_ab": order1,
                "position_order_ba": order2,
                "position": (order1 + order2) / 2,
                # How often the answer shown first is preferred (0.5 = no position bias).
                "position_first_preferred": (pairwise_outcome(s[0], s[1]) + pairwise_outcome(s[2], s[3])) / 2,
                "tokens_a": gen_a[i]["tokens_out"],
                "tokens_b": gen_b[i]["tokens_out"],
                "length_diff": gen_a[i]["tokens_out"] - gen_b[i]["tokens_out"],
            }
        )
    kw = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)
    diffs = [r["length_diff"] for r in per_item]
    result = {"model": model_a, "baseline": model_b, "n": len(per_item), "length_unit": "generated tokens",
              "judges": {}}
    for judge in ("scalar", "position"):
        prefs = [r[judge] for r in per_item]
        result["judges"][judge] = {
            "raw": win_rate_from_judgements(prefs, **kw),
            "length_controlled": length_controlled_win_rate(prefs, diffs, **kw),
            "order_agreement": sum(r[f"{judge}_order_ab"] == r[f"{judge}_order_ba"] for r in per_item) / len(per_item),
        }
    result["judges"]["position"]["first_position_preference"] = sum(
        r["position_first_preferred"] for r in per_item) / len(per_item)
    return result, per_item


def judge_all(items_path, models, gen_paths, base_dir, reward_dir, pairs, out_scores, out_results, out_items, *,
              template, max_length, batch_size, n_resamples, confidence, seed):
    """Rule evaluation_judge: win rates of each (model, baseline) pair on the reference cell, judged
    by the learned reward model (loaded once for every pair).

    Two judges:
      - scalar: r(prompt, response) of each model's answer (lmlab.alignment.reward.rm_input_ids: the
        prompt rendered with the alignment template + response + EOS). Each pair is judged in
        both orders, but a scalar reward model scores each response on its own, so the order
        cannot change the verdict (order_agreement is 1 by construction);
      - position-sensitive: one text shows both answers as A and B; the reward model scores
        that text followed by each verdict ("the better answer is A/B") and prefers the
        higher; done with the answers in both orders and averaged (ties count half), so a
        position bias cancels instead of favouring one model.
    Raw and length-controlled (lmlab.core.stats.length_controlled_win_rate, length = generated
    tokens) win rates with bootstrap intervals.
    """
    items = {row["id"]: row for row in read_jsonl(items_path)}
    gens = {m: {r["id"]: r for r in read_jsonl(p)} for m, p in zip(models, gen_paths)}
    ids = [i for i in items if all(i in gens[m] for m in models)]
    model, tokenizer = load_reward_model(base_dir, reward_dir)
    rewards = {m: {} for m in models}
    position = {pair: {} for pair in pairs}
    started = time.perf_counter()
    for i in ids:
        texts, keys = judge_texts(items[i], template, tokenizer, {m: gens[m][i]["prediction"] for m in models}, pairs)
        scores = dict(zip(keys, reward_scores(model, tokenizer, [p for p, _ in texts], [r for _, r in texts],
                                              max_length, batch_size=batch_size)))
        for m in models:
            rewards[m][i] = scores[("scalar", m)]
        for a, b in pairs:
            position[(a, b)][i] = [scores[("position", a, b, order, label)] for order in ("ab", "ba")
                                   for label in ("A", "B")]
    log.info("judged %d items x %d models, %d pairs in %.1f s", len(ids), len(models), len(pairs),
             time.perf_counter() - started)
    write_jsonl(out_scores, [{"id": i, "task": items[i]["task"], "model": m, "reward": rewards[m][i]}
                             for m in models for i in ids])
    results = []
    for (model_a, model_b), out_json, out_rows in zip(pairs, out_results, out_items):
        result, per_item = judge_pair({i: items[i] for i in ids}, gens[model_a], gens[model_b], rewards[model_a],
                                      rewards[model_b], position[(model_a, model_b)], model_a=model_a,
                                      model_b=model_b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        write_jsonl(out_rows, per_item)
        write_json(out_json, result)
        results.append(result)
        log.info("%s vs %s: scalar %.3f, position %.3f", model_a, model_b,
                 result["judges"]["scalar"]["raw"]["estimate"], result["judges"]["position"]["raw"]["estimate"])
    return results
