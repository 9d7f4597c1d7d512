"""Evaluation: the experiment matrix, generation of one cell, scoring, gold NLL, judging with
the learned reward model, and the statistics and paper summary built on top.

The matrix has three generation axes, declared in config `evaluate`:
  - model: base, sft, dpo, orpo, rloo (named models; the rules map each to base + adapter,
    and a model whose training stage is not configured is not in the matrix);
  - prompt: short (minimal template), structured (the template the SFT adapter was trained
    on: the seed template, or the model's own chat template when SFT used `chat`),
    constrained (structured + the task's explicit format rule);
  - context: the maximum number of input tokens (prompts are cut from the left).
The agent arm is a fourth axis that the agents stage runs; the matrix file lists it so the
paper shows every cell in one place.

`design: ofat` (default) runs the reference cell and every cell that differs from it in
exactly one factor; `design: factorial` runs the full product. Every cell sees the same
items (a stratified, seeded subset of sft_test) with the same greedy decoding, so any two
cells can be compared item by item: paired bootstrap intervals, exact McNemar tests, Holm.
"""

import itertools
import logging
import math
import random
import time
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_jsonl, read_tsv, write_json, write_jsonl, write_tsv

log = logging.getLogger(__name__)

AXES = ("model", "prompt", "context")
# Presentation order of the models; also the order of pairwise comparisons (later - earlier).
# The preference stage trains one RLOO policy per reward arm (rloo_rm, rloo_verifiable);
# the name `rloo` in config stands for all of them.
MODEL_ORDER = ("base", "sft", "dpo", "orpo", "rloo", "rloo_rm", "rloo_verifiable")
MODEL_FAMILIES = {"rloo": "rloo_"}


def baseline_of(model):
    """Whom a model is judged against for the win rate: the model it was trained from."""
    if model == "base":
        return None
    return "base" if model == "sft" else "sft"


# The primary, binary, per-item metric every table and test is built on (lmlab.evaluation.metrics).
PRIMARY = "correct"
# Secondary per-item metrics that get intervals wherever they are defined.
INTERVAL_METRICS = (
    "correct",
    "f1",
    "rouge_l",
    "json_parsed",
    "json_valid",
    "json_field_accuracy",
    "needless_refusal",
    "missing_refusal",
    "length_words",
    "tokens_out",
    "latency_s",
)
# Which secondary metrics the paper's table shows for each task family and overall.
SECONDARY_METRICS = {
    "json_extraction": ("json_parsed", "json_valid", "json_field_accuracy"),
    "summarization": ("rouge_l",),
    "kb_qa": ("f1",),
    "long_context_qa": ("f1",),
    "all": ("needless_refusal", "missing_refusal", "length_words", "tokens_out", "latency_s"),
}
# The template name in a prompt spec that stands for "the SFT adapter's template".
SFT_TEMPLATE_ALIAS = "sft"


# --------------------------------------------------------------------------- the matrix


def cell_id(cell):
    """`model/prompt/ctxN`: the cell's path fragment and its name in every table."""
    return f"{cell['model']}/{cell['prompt']}/ctx{cell['context']}"


def order_models(models):
    """Models in MODEL_ORDER first, any others after them in the order given."""
    known = [m for m in MODEL_ORDER if m in models]
    return known + [m for m in models if m not in MODEL_ORDER]


def resolve_models(requested, available):
    """(matrix models, evaluated models): the config's model names with `rloo` expanded to
    the RLOO arms the preference stage trains; a requested model whose stage is not
    configured stays in the matrix (as not run) but is not evaluated.

    `available` maps the names the rules know to their adapter folder ("" for the base).
    """
    matrix = []
    for name in requested:
        prefix = MODEL_FAMILIES.get(name)
        members = [m for m in available if prefix and m.startswith(prefix)] if prefix else []
        for member in members or [name]:
            if member not in matrix:
                matrix.append(member)
    matrix = order_models(matrix)
    return matrix, [m for m in matrix if m in available]


def full_factorial(models, prompts, contexts):
    """Every (model, prompt, context) cell, in axis order."""
    return [
        {"model": m, "prompt": p, "context": int(c)}
        for m, p, c in itertools.product(models, prompts, contexts)
    ]


def reference_cell(models, prompts, contexts, reference):
    """The reference cell, with a missing reference model replaced by the last available of
    its fall-backs (sft -> base), so a run without SFT still has a reference."""
    ref = {"model": reference["model"], "prompt": reference["prompt"], "context": int(reference["context"])}
    if ref["model"] not in models:
        fallback = [m for m in order_models(models) if MODEL_ORDER.index(m) < MODEL_ORDER.index(ref["model"])] if (
            ref["model"] in MODEL_ORDER
        ) else []
        if not fallback:
            raise InputError(f"config: evaluation.reference.model: {ref['model']!r} is not among the models {list(models)}")
        ref["model"] = fallback[-1]
    if ref["prompt"] not in prompts:
        raise InputError(f"config: evaluation.reference.prompt: {ref['prompt']!r} is not among the prompts {list(prompts)}")
    if ref["context"] not in [int(c) for c in contexts]:
        raise InputError(f"config: evaluation.reference.context: {ref['context']} is not among the contexts {list(contexts)}")
    return ref


def design_cells(models, prompts, contexts, design, reference):
    """The cells the design runs, in factorial order.

    ofat: the reference cell plus every cell that differs from it in exactly one factor
    (1 + (M-1) + (P-1) + (C-1) cells); factorial: all M x P x C cells.
    """
    if not models:
        raise InputError("config: evaluation.models: no model is available to evaluate")
    cells = full_factorial(models, prompts, contexts)
    if design == "factorial":
        return cells
    if design != "ofat":
        raise InputError(f"config: evaluation.design: {design!r} is not one of ofat, factorial")
    ref = reference_cell(models, prompts, contexts, reference)
    return [c for c in cells if sum(c[a] != ref[a] for a in AXES) <= 1]


def differing_pairs(cells):
    """Pairs of cells that differ in exactly one factor: (factor, cell_a, cell_b), b earlier.

    Within the factor, a is the later level in the axis order (e.g. dpo - sft, ctx2048 - ctx256).
    """
    pairs = []
    for b, a in itertools.combinations(cells, 2):
        diff = [axis for axis in AXES if a[axis] != b[axis]]
        if len(diff) == 1:
            pairs.append((diff[0], a, b))
    return pairs


def matrix_rows(all_models, models, prompts, contexts, design, reference, agent_arms=(), exists=None):
    """One row per cell of the full factorial (models not configured included), plus the
    agent arms: model, prompt, context, agent_arm, stage, in_design, ran, reason, path.

    `all_models` are every model name the matrix knows; `models` those whose stage is
    configured. `exists(path)` tells whether a cell ran (default: the file exists).
    """
    exists = exists or (lambda p: Path(p).exists())
    in_design = {cell_id(c) for c in design_cells(models, prompts, contexts, design, reference)}
    ref = reference_cell(models, prompts, contexts, reference)
    rows = []
    for cell in full_factorial(order_models(all_models), prompts, contexts):
        path = generation_path(cell)
        if cell["model"] not in models:
            reason = "model's training stage is not configured"
        elif cell_id(cell) == cell_id(ref):
            reason = "reference cell"
        elif cell_id(cell) in in_design:
            reason = "varies " + next(a for a in AXES if cell[a] != ref[a])
        else:
            reason = f"not in the {design} design"
        rows.append(
            {
                **cell,
                "agent_arm": "none",
                "stage": "evaluation",
                "in_design": cell_id(cell) in in_design,
                "ran": bool(exists(path)),
                "reason": reason,
                "path": path,
            }
        )
    for arm in agent_arms:
        rows.append(
            {
                "model": arm.get("model", ""),
                "prompt": arm.get("prompt", ""),
                "context": arm.get("context", ""),
                "agent_arm": arm["arm"],
                "stage": "agents",
                "in_design": bool(arm.get("in_design", True)),
                # Without a path the agents stage has not said where its arm writes: unknown.
                "ran": bool(exists(arm["path"])) if arm.get("path") else None,
                "reason": "run by the agents stage",
                "path": arm.get("path", ""),
            }
        )
    return rows


MATRIX_COLUMNS = ["model", "prompt", "context", "agent_arm", "stage", "in_design", "ran", "reason", "path"]


def write_matrix(out_tsv, **kwargs):
    """Rule evaluation_matrix: results/evaluation/matrix.tsv (see matrix_rows)."""
    rows = matrix_rows(**kwargs)
    write_tsv(out_tsv, rows, MATRIX_COLUMNS)
    return rows


def generation_path(cell, root="results/evaluation"):
    return f"{root}/generations/{cell_id(cell)}.jsonl"


def resolve_prompt(spec, sft_template):
    """(template, constrained) of a prompt spec; template `sft` means the SFT adapter's."""
    template = sft_template if spec["template"] == SFT_TEMPLATE_ALIAS else spec["template"]
    return template, bool(spec.get("constrained", False))


# --------------------------------------------------------------------------- test items


def select_test_items(rows, max_items_per_task, seed, max_items_by_task=None):
    """A stratified, seeded subset: per task, up to `max_items_per_task` rows (or the task's
    own limit in `max_items_by_task`), languages alternated so each task is balanced between
    en and es where it can be. 0 = all rows. The subset keeps the file's order."""
    by_task = {}
    for index, row in enumerate(rows):
        by_task.setdefault(row["task"], []).append(index)
    keep = []
    for task in sorted(by_task):
        indices = by_task[task]
        limit = (max_items_by_task or {}).get(task, max_items_per_task)
        if not limit or limit >= len(indices):
            keep += indices
            continue
        rng = random.Random(f"{seed}:eval:{task}")
        by_lang = {}
        for i in indices:
            by_lang.setdefault(rows[i]["lang"], []).append(i)
        queues = []
        for lang in sorted(by_lang):
            queue = list(by_lang[lang])
            rng.shuffle(queue)
            queues.append(queue)
        chosen = []
        while len(chosen) < limit:
            for queue in queues:
                if queue and len(chosen) < limit:
                    chosen.append(queue.pop(0))
        keep += chosen
    return [rows[i] for i in sorted(keep)]


def write_test_items(sft_test, out_path, max_items_per_task, seed, max_items_by_task=None):
    """Rule evaluation_testset: the items every cell is evaluated on."""
    rows = select_test_items(read_jsonl(sft_test), max_items_per_task, seed, max_items_by_task)
    if not rows:
        raise InputError(f"{sft_test}: no test items")
    write_jsonl(out_path, rows)
    log.info("%d test items: %s", len(rows), _counts(rows, "task"))
    return rows


def _counts(rows, key):
    counts = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- generation


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

    Greedy decoding through lmlab.models.generation.generate_batched, one call per task (each task
    has its own max_new_tokens); identical settings in every cell apart from the cell's own
    factors. Rows: id, task, lang, meta, instruction, input, prompt (as sent, i.e. cut from
    the left when truncated), prompt_tokens (before the cut), prediction, gold, tokens_in,
    tokens_out, truncated, stopped_at_eos, latency_s, decoding, model, prompt_name,
    template, constrained, context, base_hash, adapter_hash.
    """
    from lmlab.models.generation import decoding_settings, generate_batched
    from lmlab.models.base import load_model, load_tokenizer, model_hash
    from lmlab.models.templates import render_prompt

    items = read_jsonl(items_path)
    tokenizer = load_tokenizer(base_dir)
    model = load_model(base_dir, adapter_dir or None)
    hashes = model_hash(base_dir, adapter_dir or None)
    prompts = [render_prompt(row, template, tokenizer, constrained) for row in items]
    results = [None] * len(items)
    by_task = {}
    for i, row in enumerate(items):
        by_task.setdefault(row["task"], []).append(i)
    started = time.perf_counter()
    for task in sorted(by_task):
        indices = by_task[task]
        budget = max_new_tokens_for(task, max_new_tokens)
        outputs = generate_batched(
            model,
            tokenizer,
            [prompts[i] for i in indices],
            max_new_tokens=budget,
            batch_size=batch_size,
            max_input_tokens=context,
            progress=False,
        )
        for i, out in zip(indices, outputs):
            results[i] = (out, budget)
        log.info("%s: %d items, %.1f s so far", task, len(indices), time.perf_counter() - started)
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
                "tokens_in": out["tokens_in"],
                "tokens_out": out["tokens_out"],
                "truncated": out["truncated"],
                "stopped_at_eos": bool(out["stopped_at_eos"]),
                "latency_s": out["latency_s"],
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
    log.info("%s/%s/ctx%s: %d items, %d new tokens in %.1f s (%.1f tokens/s)",
             model_name, prompt_name, context, len(rows), tokens, elapsed, tokens / max(elapsed, 1e-9))
    return rows


# --------------------------------------------------------------------------- scoring

# Generation fields copied into every scored row (cost per example, and what errors need).
CARRIED_FIELDS = ("tokens_in", "tokens_out", "latency_s", "truncated", "stopped_at_eos")


def score_rows(gen_rows, rouge_threshold):
    """lmlab.evaluation.metrics.score_item on every generation row, plus cost fields and `hit_max_new_tokens`."""
    from lmlab.evaluation.metrics import score_item

    scored = []
    for row in gen_rows:
        item = score_item(row, rouge_threshold=rouge_threshold)
        for key in CARRIED_FIELDS:
            item[key] = row[key]
        item["hit_max_new_tokens"] = (not row["stopped_at_eos"]) and row["tokens_out"] >= row["decoding"]["max_new_tokens"]
        scored.append(item)
    return scored


def aggregate_columns(aggregates):
    keys = set()
    for row in aggregates:
        keys |= set(row)
    return ["task", "n"] + sorted(keys - {"task", "n"})


def score_cell(gen_path, out_jsonl, out_tsv, rouge_threshold):
    """Rule evaluation_score: per-item metrics (.jsonl) and their means by task and overall (.tsv)."""
    from lmlab.evaluation.metrics import aggregate

    scored = score_rows(read_jsonl(gen_path), rouge_threshold)
    write_jsonl(out_jsonl, scored)
    aggregates = aggregate(scored)
    write_tsv(out_tsv, aggregates, aggregate_columns(aggregates))
    return scored


# --------------------------------------------------------------------------- gold NLL


def nll_for_model(items_path, base_dir, adapter_dir, out_path, *, model_name, template, constrained, context,
                  batch_size):
    """Rule evaluation_nll: per-item mean NLL (nats/token) of the gold output under the reference prompt."""
    from lmlab.evaluation.metrics import gold_nll
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.templates import render_prompt

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


# --------------------------------------------------------------------------- judging

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
    request = row["instruction"].strip()
    if row.get("input", "").strip():
        request += "\n\n" + row["input"].strip()
    lang = row.get("lang", "en") if row.get("lang") in PAIR_INSTRUCTION else "en"
    return (
        f"{PAIR_INSTRUCTION[lang]}\n\n### Request:\n{request}\n\n"
        f"### Answer A:\n{answer_a.strip()}\n\n### Answer B:\n{answer_b.strip()}"
    )


def outcome(score_a, score_b):
    """1 if A scores higher, 0.5 on a tie, 0 otherwise."""
    if score_a > score_b:
        return 1.0
    if score_a == score_b:
        return 0.5
    return 0.0


def tree_scores(model, tokenizer, sequences):
    """Reward scores of token sequences (lmlab.alignment.reward.rm_input_ids), sharing common prefixes.

    The same numbers as lmlab.alignment.reward.reward_scores on the same ids (read at the last non-pad
    token, where the sequence-classification head pools; SmolLM2's pad is its EOS, so the
    token before the final EOS), but the sequences form a prefix tree: every shared prefix
    runs once and each branch runs on top of its key-value cache, which is cropped back after
    the branch. One judged item's texts (every model's answer to the same prompt; the pair
    texts that share the request and differ in answer order and verdict) share most of their
    tokens, so this cuts the judge's cost several-fold. Needs the decoder-classifier layout
    (`base_model` + `score` head); returns None for any other model.
    """
    import torch

    if not (hasattr(model, "base_model") and hasattr(model, "score")) or model.base_model is model:
        return None
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


def judged_scores(model, tokenizer, pairs, max_length, batch_size):
    """Reward scores of (prompt, response) pairs, one item's pairs at a time through
    tree_scores (falls back to lmlab.alignment.reward.reward_scores without it)."""
    from lmlab.alignment.reward import reward_scores, rm_input_ids

    sequences = [rm_input_ids(tokenizer, p, r, max_length) for p, r in pairs]
    scores = tree_scores(model, tokenizer, sequences)
    if scores is None:
        scores = reward_scores(model, tokenizer, [p for p, _ in pairs], [r for _, r in pairs], max_length=max_length,
                               batch_size=batch_size)
    return scores


def judge_texts(row, template, tokenizer, answers, pairs):
    """The (prompt, response) texts the judges score for one item: each model's answer to the
    item's prompt (scalar judge), and for each pair of models the pair text in both orders
    with each verdict (position judge). Returns (texts, keys)."""
    from lmlab.models.templates import render_prompt

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
    from lmlab.core.stats import length_controlled_win_rate, win_rate_from_judgements

    if set(gen_a) != set(gen_b):
        raise InputError(f"{model_a} and {model_b}: generations cover different items")
    per_item = []
    for i in (i for i in items if i in gen_a):
        s = position_scores[i]
        # Order 1 shows A (model_a) first: model_a wins if verdict "A" scores higher.
        order1 = outcome(s[0], s[1])
        # Order 2 shows model_b first: model_a (now "B") wins if verdict "B" scores higher.
        order2 = outcome(s[3], s[2])
        # A scalar reward scores each response alone; judged as (a, b) and as (b, a) the
        # verdict is the same by construction, which order_agreement records.
        scalar_ab = outcome(reward_a[i], reward_b[i])
        scalar_ba = 1.0 - outcome(reward_b[i], reward_a[i])
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
                "position_first_preferred": (outcome(s[0], s[1]) + outcome(s[2], s[3])) / 2,
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
    from lmlab.alignment.reward import load_reward_model

    items = {row["id"]: row for row in read_jsonl(items_path)}
    gens = {m: {r["id"]: r for r in read_jsonl(p)} for m, p in zip(models, gen_paths)}
    ids = [i for i in items if all(i in gens[m] for m in models)]
    model, tokenizer = load_reward_model(base_dir, reward_dir)
    rewards = {m: {} for m in models}
    position = {pair: {} for pair in pairs}
    started = time.perf_counter()
    for i in ids:
        texts, keys = judge_texts(items[i], template, tokenizer, {m: gens[m][i]["prediction"] for m in models}, pairs)
        scores = dict(zip(keys, judged_scores(model, tokenizer, texts, max_length, batch_size)))
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


# --------------------------------------------------------------------------- statistics


def _is_value(value):
    return isinstance(value, (bool, int, float)) and not (isinstance(value, float) and math.isnan(value))


def task_groups(rows):
    """[(group, rows)]: each task (sorted), then "all"."""
    groups = {}
    for row in rows:
        groups.setdefault(row["task"], []).append(row)
    return [(task, groups[task]) for task in sorted(groups)] + [("all", list(rows))]


def metric_intervals(cell, scored, metrics, n_resamples, confidence, seed):
    """Bootstrap interval rows of every metric defined on each task group of one cell."""
    from lmlab.core.stats import bootstrap_ci

    rows = []
    for group, items in task_groups(scored):
        for metric in metrics:
            values = [float(r[metric]) for r in items if _is_value(r.get(metric))]
            if not values:
                continue
            ci = bootstrap_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
            rows.append({**cell, "cell": cell_id(cell), "task": group, "metric": metric, **ci})
    return rows


def paired_values(a_rows, b_rows, metric, label_a, label_b):
    """Aligned per-item values of two cells on the same items (same ids, or an error)."""
    a = {r["id"]: r for r in a_rows}
    b = {r["id"]: r for r in b_rows}
    if set(a) != set(b):
        raise InputError(f"{label_a} and {label_b}: scored on different items; cells must share the test set")
    def ok(value):
        return _is_value(value) and math.isfinite(value)

    ids = sorted(i for i in a if ok(a[i].get(metric)) and ok(b[i].get(metric)))
    return ids, [float(a[i][metric]) for i in ids], [float(b[i][metric]) for i in ids]


def compare_cells(factor, cell_a, cell_b, scored_a, scored_b, n_resamples, confidence, seed):
    """Paired bootstrap of mean(correct_a) - mean(correct_b) and the exact McNemar test,
    per task group, on the same items."""
    from lmlab.core.stats import mcnemar_exact, paired_bootstrap_diff

    rows = []
    groups_b = dict(task_groups(scored_b))
    for group, items_a in task_groups(scored_a):
        ids, a, b = paired_values(items_a, groups_b.get(group, []), PRIMARY, cell_id(cell_a), cell_id(cell_b))
        if not ids:
            continue
        diff = paired_bootstrap_diff(a, b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        test = mcnemar_exact([v > 0.5 for v in a], [v > 0.5 for v in b])
        rows.append(
            {
                "factor": factor,
                "a": cell_id(cell_a),
                "b": cell_id(cell_b),
                "task": group,
                "metric": PRIMARY,
                "n": diff["n"],
                "mean_a": diff["mean_a"],
                "mean_b": diff["mean_b"],
                "estimate": diff["estimate"],
                "low": diff["low"],
                "high": diff["high"],
                "method": diff["method"],
                "n10": test["n10"],
                "n01": test["n01"],
                "p_mcnemar": test["p_value"],
            }
        )
    return rows


def apply_holm(rows, alpha=0.05):
    """Holm-adjust p_mcnemar within two families: the overall comparisons (task "all", the
    headline family) and the per-task comparisons."""
    from lmlab.core.stats import holm

    for family, member in (("overall", lambda r: r["task"] == "all"), ("per_task", lambda r: r["task"] != "all")):
        members = [r for r in rows if member(r)]
        if not members:
            continue
        adjusted = holm([r["p_mcnemar"] for r in members], alpha=alpha)
        for r, p, reject in zip(members, adjusted["adjusted"], adjusted["reject"]):
            r["holm_family"] = family
            r["holm_family_size"] = len(members)
            r["p_holm"] = p
            r["significant"] = reject
    return rows


def nll_stats(nll_rows_by_model, n_resamples, confidence, seed):
    """Per model: mean gold NLL interval and token-weighted perplexity by task group, and
    paired differences of mean NLL between every two models (overall)."""
    from lmlab.evaluation.metrics import perplexity
    from lmlab.core.stats import bootstrap_ci, paired_bootstrap_diff

    intervals, diffs = [], []
    for model, all_rows in nll_rows_by_model.items():
        for group, items in task_groups(all_rows):
            # A diverged model gives NaN/inf NLL: counted, reported, left out of the mean.
            finite = [r for r in items if r["gold_tokens"] and _is_value(r["gold_nll"]) and math.isfinite(r["gold_nll"])]
            row = {"model": model, "task": group, "metric": "gold_nll", "n_nonfinite": len(items) - len(finite)}
            if finite:
                ci = bootstrap_ci([r["gold_nll"] for r in finite], n_resamples=n_resamples, confidence=confidence,
                                  seed=seed)
                row.update(ci, perplexity=perplexity(finite), gold_tokens=sum(r["gold_tokens"] for r in finite))
            else:
                row.update(estimate=None, low=None, high=None, n=0, method="none", perplexity=None, gold_tokens=0)
            intervals.append(row)
    models = order_models(list(nll_rows_by_model))
    for b, a in itertools.combinations(models, 2):
        ids, va, vb = paired_values(nll_rows_by_model[a], nll_rows_by_model[b], "gold_nll", a, b)
        if ids:
            diff = paired_bootstrap_diff(va, vb, n_resamples=n_resamples, confidence=confidence, seed=seed)
            diffs.append({"a": a, "b": b, "task": "all", "metric": "gold_nll", **diff})
    return intervals, diffs


WINRATE_COLUMNS = ["model", "baseline", "judge", "kind", "estimate", "low", "high", "n", "method", "wins", "ties",
                   "losses", "order_agreement"]


def winrate_rows(result):
    rows = []
    for judge, res in result["judges"].items():
        for kind in ("raw", "length_controlled"):
            r = res[kind]
            rows.append(
                {
                    "model": result["model"],
                    "baseline": result["baseline"],
                    "judge": judge,
                    "kind": kind,
                    **{k: r.get(k) for k in ("estimate", "low", "high", "n", "method", "wins", "ties", "losses")},
                    "order_agreement": res["order_agreement"],
                }
            )
    return rows


INTERVAL_COLUMNS = ["cell", "model", "prompt", "context", "task", "metric", "estimate", "low", "high", "n", "method"]
COMPARISON_COLUMNS = ["factor", "a", "b", "task", "metric", "n", "mean_a", "mean_b", "estimate", "low", "high",
                      "method", "n10", "n01", "p_mcnemar", "holm_family", "holm_family_size", "p_holm", "significant"]
NLL_COLUMNS = ["model", "task", "metric", "estimate", "low", "high", "n", "method", "perplexity", "gold_tokens",
               "n_nonfinite"]
NLL_DIFF_COLUMNS = ["a", "b", "task", "metric", "n", "mean_a", "mean_b", "estimate", "low", "high", "method"]


def evaluation_stats(cells, metrics_paths, nll_paths, winrate_paths, out_dir, *, design, reference, n_resamples,
                     confidence, seed, alpha=0.05, judge_status=None):
    """Rule evaluation_stats: intervals on every aggregate, paired comparisons of every two design
    cells that differ in one factor, gold NLL, win rates -> results/evaluation/stats/."""
    out_dir = Path(out_dir)
    kw = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)
    scored = {cell_id(c): read_jsonl(p) for c, p in zip(cells, metrics_paths)}
    intervals = []
    for cell in cells:
        intervals += metric_intervals(cell, scored[cell_id(cell)], INTERVAL_METRICS, **kw)
    comparisons = []
    for factor, a, b in differing_pairs(cells):
        comparisons += compare_cells(factor, a, b, scored[cell_id(a)], scored[cell_id(b)], **kw)
    apply_holm(comparisons, alpha)
    nll_intervals, nll_diffs = nll_stats({m: read_jsonl(p) for m, p in nll_paths.items()}, **kw)
    winrates = [read_json(p) for p in winrate_paths]
    wr_rows = [row for result in winrates for row in winrate_rows(result)]

    write_tsv(out_dir / "intervals.tsv", intervals, INTERVAL_COLUMNS, digits=6)
    write_tsv(out_dir / "comparisons.tsv", comparisons, COMPARISON_COLUMNS, digits=6)
    write_tsv(out_dir / "nll.tsv", nll_intervals, NLL_COLUMNS, digits=6)
    write_tsv(out_dir / "nll_comparisons.tsv", nll_diffs, NLL_DIFF_COLUMNS, digits=6)
    write_tsv(out_dir / "winrates.tsv", wr_rows, WINRATE_COLUMNS, digits=6)
    cost = []
    for cell in cells:
        rows = scored[cell_id(cell)]
        cost.append(
            {
                "cell": cell_id(cell),
                **cell,
                "n": len(rows),
                "generate_s": sum(r["latency_s"] for r in rows),
                "tokens_in": sum(r["tokens_in"] for r in rows),
                "tokens_out": sum(r["tokens_out"] for r in rows),
                "truncated": sum(bool(r["truncated"]) for r in rows),
                "hit_max_new_tokens": sum(bool(r["hit_max_new_tokens"]) for r in rows),
            }
        )
    result = {
        "design": design,
        "reference": reference,
        "cells": [cell_id(c) for c in cells],
        "primary_metric": PRIMARY,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "alpha": alpha,
        "seed": seed,
        "intervals": intervals,
        "comparisons": comparisons,
        "nll": nll_intervals,
        "nll_comparisons": nll_diffs,
        "winrates": winrates,
        "judge": judge_status or {"available": bool(winrates)},
        "cost": cost,
    }
    write_json(out_dir / "stats.json", result)
    return result


# --------------------------------------------------------------------------- paper summary


def _ci(row):
    return {k: row[k] for k in ("estimate", "low", "high", "n")}


def _yes(value):
    if value in (None, ""):
        return "n/a"
    return "yes" if value in (True, "true", "True") else "no"


def _interval_lookup(intervals):
    return {(r["cell"], r["task"], r["metric"]): r for r in intervals}


def primary_figure(models, tasks, lookup, ref, out_png, out_pdf):
    """Primary metric by model and task on the reference prompt and context, 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.core.format import apply_style

    apply_style(plt)
    groups = list(tasks) + ["all"]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(groups) + 1.5), 3.4))
    for k, model in enumerate(models):
        cell = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        xs, ys, lo, hi = [], [], [], []
        for j, group in enumerate(groups):
            r = lookup.get((cell, group, PRIMARY))
            if r is None:
                continue
            xs.append(j + (k - (len(models) - 1) / 2) * width)
            ys.append(r["estimate"])
            lo.append(r["estimate"] - r["low"])
            hi.append(r["high"] - r["estimate"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=model, error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(groups)), [g.replace("_", "\n") for g in groups], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share correct (primary metric)")
    ax.set_xlabel(f"task family (prompt {ref['prompt']}, context {ref['context']} tokens)")
    ax.legend(frameon=False, fontsize=7, ncol=min(len(models), 5))
    fig.tight_layout()
    fig.savefig(out_png, dpi=150)
    fig.savefig(out_pdf)
    plt.close(fig)


def factors_figure(cells, tasks, lookup, ref, out_png, out_pdf):
    """Prompt-variant and context effects for the reference model: overall and per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.core.format import apply_style

    apply_style(plt)
    groups = list(tasks) + ["all"]
    panels = [
        ("prompt", [c for c in cells if c["model"] == ref["model"] and c["context"] == ref["context"]]),
        ("context", [c for c in cells if c["model"] == ref["model"] and c["prompt"] == ref["prompt"]]),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, (factor, members) in zip(axes, panels):
        width = 0.8 / max(len(members), 1)
        for k, cell in enumerate(members):
            xs, ys, lo, hi = [], [], [], []
            for j, group in enumerate(groups):
                r = lookup.get((cell_id(cell), group, PRIMARY))
                if r is None:
                    continue
                xs.append(j + (k - (len(members) - 1) / 2) * width)
                ys.append(r["estimate"])
                lo.append(r["estimate"] - r["low"])
                hi.append(r["high"] - r["estimate"])
            label = f"ctx {cell['context']}" if factor == "context" else cell["prompt"]
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=label, error_kw={"linewidth": 0.8})
        ax.set_xticks(range(len(groups)), [g.replace("_", "\n") for g in groups], fontsize=6)
        ax.set_title(f"{factor} ({ref['model']})")
        ax.set_xlabel("task family")
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("share correct (primary metric)")
    axes[0].set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(out_png, dpi=150)
    fig.savefig(out_pdf)
    plt.close(fig)


def _headline(ref_row, comparisons, winrates, judge_status, ref):
    """Two or three sentences for the abstract, built from the numbers (never typed)."""
    from lmlab.core.format import fmt_ci

    parts = []
    if ref_row:
        parts.append(
            f"In the reference evaluation cell ({cell_id(ref)}) the share of correct answers is "
            f"{fmt_ci(_ci(ref_row), 3)}."
        )
    overall = [c for c in comparisons if c["task"] == "all"]
    sft_vs_base = [c for c in overall if c["factor"] == "model" and c["a"].split("/")[0] == "sft"
                   and c["b"].split("/")[0] == "base"]
    if sft_vs_base:
        c = sft_vs_base[0]
        parts.append(f"SFT minus base: {fmt_ci(_ci(c), 3)} (Holm-adjusted McNemar p = {c['p_holm']:.3g}).")
    if overall:
        significant = sum(bool(c["significant"]) for c in overall)
        parts.append(f"{significant} of {len(overall)} paired comparisons between design cells are significant "
                     "after Holm correction.")
    if judge_status.get("available"):
        first = winrates[0] if winrates else None
        if first:
            r = first["judges"]["scalar"]["raw"]
            parts.append(f"The learned reward model prefers {first['model']} over {first['baseline']} on "
                         f"{fmt_ci(_ci(r), 3)} of the items.")
    else:
        parts.append(judge_status.get("reason", "No win rate was computed."))
    return " ".join(parts)


def evaluation_summary(stats_json, matrix_tsv, items_path, out_summary, human_eval=None, human_key=None, prompts=None,
                       sft_template=None):
    """Rule evaluation_summary: results/evaluation/summary.json, tables/*.tsv and figures/*.{png,pdf}."""
    from lmlab.core.format import fmt_ci

    out_dir = Path(out_summary).parent
    tables, figures = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    st = read_json(stats_json)
    matrix = read_tsv(matrix_tsv)
    items = read_jsonl(items_path)
    ref = st["reference"]
    cells = [dict(zip(AXES, (c.split("/")[0], c.split("/")[1], int(c.split("/")[2][3:])))) for c in st["cells"]]
    lookup = _interval_lookup(st["intervals"])
    tasks = sorted({r["task"] for r in st["intervals"] if r["task"] != "all"})
    models = order_models(sorted({c["model"] for c in cells if c["prompt"] == ref["prompt"] and c["context"] == ref["context"]}))

    # Matrix (which cells ran).
    matrix_rows_ = [
        {"model": r["model"], "prompt": r["prompt"], "context": r["context"], "agent_arm": r["agent_arm"],
         "in_design": _yes(r["in_design"]), "ran": _yes(r["ran"]), "reason": r["reason"]}
        for r in matrix
    ]
    write_tsv(tables / "evaluation_matrix.tsv", matrix_rows_)

    # Metric table with intervals: model x task on the reference prompt and context.
    metric_rows, metrics = [], {}
    for model in models:
        cell = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        row = {"model": model}
        metrics[model] = {}
        for group in tasks + ["all"]:
            r = lookup.get((cell, group, PRIMARY))
            row[group] = fmt_ci(_ci(r), 3) if r else ""
            if r:
                metrics[model][group] = _ci(r)
        metric_rows.append(row)
    write_tsv(tables / "evaluation_metrics.tsv", metric_rows, ["model"] + tasks + ["all"])

    # Secondary metrics on the reference prompt and context: each task's own, then the overall ones.
    secondary = []
    for model in models:
        cell = cell_id({"model": model, "prompt": ref["prompt"], "context": ref["context"]})
        for group in tasks + ["all"]:
            for metric in SECONDARY_METRICS.get(group, ()):
                r = lookup.get((cell, group, metric))
                if r:
                    secondary.append({"model": model, "task": group, "metric": metric, "value": fmt_ci(_ci(r), 3)})
    write_tsv(tables / "evaluation_secondary.tsv", secondary, ["model", "task", "metric", "value"])

    # Every design cell: overall primary metric and cost.
    cost = {c["cell"]: c for c in st["cost"]}
    cell_rows, cell_summary = [], {}
    for cell in cells:
        cid = cell_id(cell)
        r = lookup.get((cid, "all", PRIMARY))
        c = cost[cid]
        cell_rows.append(
            {"cell": cid, "correct": fmt_ci(_ci(r), 3), "tokens_out_per_item": c["tokens_out"] / c["n"],
             "latency_s_per_item": c["generate_s"] / c["n"], "generate_s": c["generate_s"],
             "truncated_inputs": c["truncated"], "hit_max_new_tokens": c["hit_max_new_tokens"]}
        )
        cell_summary[cid] = {"correct": _ci(r), **{k: c[k] for k in ("n", "generate_s", "tokens_in", "tokens_out",
                                                                       "truncated", "hit_max_new_tokens")},
                             "by_task": {g: _ci(lookup[(cid, g, PRIMARY)]) for g in tasks if (cid, g, PRIMARY) in lookup}}
    write_tsv(tables / "evaluation_cells.tsv", cell_rows)

    # Paired comparisons (overall family in the paper; every task in the second table).
    def comparison_row(c):
        return {"factor": c["factor"], "a": c["a"], "b": c["b"], "task": c["task"], "n": c["n"],
                "difference": fmt_ci(_ci(c), 3), "n10": c["n10"], "n01": c["n01"], "p_mcnemar": c["p_mcnemar"],
                "p_holm": c["p_holm"], "significant": _yes(c["significant"])}

    write_tsv(tables / "evaluation_comparisons.tsv",
              [comparison_row(c) for c in st["comparisons"] if c["task"] == "all"])
    write_tsv(tables / "evaluation_comparisons_by_task.tsv",
              [comparison_row(c) for c in st["comparisons"] if c["task"] != "all"])

    # Win rates.
    wr_rows = []
    for w in st["winrates"]:
        for row in winrate_rows(w):
            wr_rows.append({"model": row["model"], "baseline": row["baseline"], "judge": row["judge"],
                            "kind": row["kind"], "win_rate": fmt_ci(_ci(row), 3),
                            "wins_ties_losses": f"{row['wins']}/{row['ties']}/{row['losses']}"
                            if row["wins"] is not None else "",
                            "order_agreement": row["order_agreement"]})
    write_tsv(tables / "evaluation_winrates.tsv", wr_rows,
              ["model", "baseline", "judge", "kind", "win_rate", "wins_ties_losses", "order_agreement"])

    # Gold NLL.
    nll_rows = [{"model": r["model"], "gold_nll": fmt_ci(_ci(r), 3) if r["n"] else "",
                 "perplexity": r["perplexity"], "gold_tokens": r["gold_tokens"], "nonfinite_items": r["n_nonfinite"]}
                for r in st["nll"] if r["task"] == "all"]
    write_tsv(tables / "evaluation_nll.tsv", nll_rows,
              ["model", "gold_nll", "perplexity", "gold_tokens", "nonfinite_items"])

    primary_figure(models, tasks, lookup, ref, figures / "evaluation_primary_by_model.png",
                   figures / "evaluation_primary_by_model.pdf")
    factors_figure(cells, tasks, lookup, ref, figures / "evaluation_factors.png", figures / "evaluation_factors.pdf")

    ref_row = lookup.get((cell_id(ref), "all", PRIMARY))
    summary = {
        "headline": _headline(ref_row, st["comparisons"], st["winrates"], st["judge"], ref),
        "design": st["design"],
        "reference": {**ref, "cell": cell_id(ref)},
        "primary_metric": PRIMARY,
        "confidence": st["confidence"],
        "n_resamples": st["n_resamples"],
        "alpha": st["alpha"],
        "n_items": len(items),
        "items_per_task": _counts(items, "task"),
        "items_per_lang": _counts(items, "lang"),
        "models": models,
        "tasks": tasks,
        "sft_template": sft_template,
        "prompts": {name: {"template": spec[0], "constrained": bool(spec[1])} for name, spec in (prompts or {}).items()},
        "contexts": sorted({c["context"] for c in cells}),
        "matrix": {
            "cells_total": sum(r["stage"] == "evaluation" for r in matrix),
            "cells_in_design": sum(r["stage"] == "evaluation" and _yes(r["in_design"]) == "yes" for r in matrix),
            "cells_ran": sum(r["stage"] == "evaluation" and _yes(r["ran"]) == "yes" for r in matrix),
            "agent_arms": sum(r["stage"] == "agents" for r in matrix),
        },
        "metrics": metrics,
        "cells": cell_summary,
        "comparisons": [
            {k: c[k] for k in ("factor", "a", "b", "task", "n", "estimate", "low", "high", "n10", "n01",
                               "p_mcnemar", "p_holm", "significant", "holm_family", "holm_family_size")}
            for c in st["comparisons"] if c["task"] == "all"
        ],
        "n_comparisons": {"overall": sum(c["task"] == "all" for c in st["comparisons"]),
                          "per_task": sum(c["task"] != "all" for c in st["comparisons"])},
        "winrates": {
            **st["judge"],
            "pairs": {f"{w['model']}_vs_{w['baseline']}": {
                judge: {kind: _ci(res[kind]) for kind in ("raw", "length_controlled")}
                | {"order_agreement": res["order_agreement"]}
                for judge, res in w["judges"].items()} for w in st["winrates"]},
        },
        "nll": {r["model"]: {**_ci(r), "perplexity": r["perplexity"], "n_nonfinite": r["n_nonfinite"]}
                for r in st["nll"] if r["task"] == "all"},
        "cost": {
            "generate_s_total": sum(c["generate_s"] for c in st["cost"]),
            "tokens_out_total": sum(c["tokens_out"] for c in st["cost"]),
            "generations": sum(c["n"] for c in st["cost"]),
        },
        "human_eval": _human_summary(human_eval, human_key),
    }
    write_json(out_summary, summary)
    return summary


def _human_summary(agreement_path, key_path):
    """What the paper says about the human-evaluation kit: the sheet's size, and agreement
    and mean ratings when filled sheets were read back."""
    import csv

    summary = {"sheet_rows": 0, "annotators": 0, "agreement": None, "mean_by_model": None}
    if key_path:
        with open(key_path, encoding="utf-8", newline="") as handle:
            key = list(csv.DictReader(handle))
        summary["sheet_rows"] = len(key)
        summary["sheet_items"] = len({row["id"] for row in key})
    if agreement_path:
        agreement = read_json(agreement_path)
        summary["annotators"] = agreement["annotators"]
        summary["agreement"] = agreement.get("agreement")
        summary["mean_by_model"] = agreement.get("mean_by_model")
    return summary
