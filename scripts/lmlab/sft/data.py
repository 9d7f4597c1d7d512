"""The SFT training set: a weighted, seeded mix of validated SFT files, rendered as
prompt-completion pairs with `lmlab.models.templates`, and the validation rows.

A multi-turn conversation goes through the chat template turn by turn and trains on its last
answer or on every assistant turn (`sft.multi_turn_loss`: `assistant_turns`). Every answer is
a completion of its own, so TRL's completion-only loss covers it on any template; TRL's
`assistant_only_loss` would need `{% generation %}` markers that SmolLM2's chat template lacks.

Trailing spaces of a prompt move to its completion, and rows too long for `max_length` are
dropped rather than cut (a cut would lose the response and its EOS). Validation rows are those
that fit under every template, so every template is validated on the same rows.
"""

import math
import random
from pathlib import Path

from datasets import Dataset

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, sha256_file
from lmlab.models.templates import TEMPLATE_NAMES, render_completion, render_prompt


def _largest_remainder(total, weights):
    """Integer counts summing to `total`, proportional to `weights` (ties: earlier entry first)."""
    weight_sum = float(sum(weights))
    quotas = [total * w / weight_sum for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def sample_mix(sources, mix, n_total=None, seed=0):
    """Draw a training set from several datasets by weight, deterministically from `seed`.

    `sources`: {name: rows}; `mix`: [{"dataset", "weight"}]. Each dataset gets its share of
    `n_total` (default: the sizes of the mixed datasets summed); within a dataset rows are drawn
    without replacement from a seeded permutation, and a share larger than the dataset takes
    whole extra permutations (upsampling). Returns (rows, record-per-dataset).
    """
    for entry in mix:
        if entry["dataset"] not in sources:
            raise InputError(f"config: sft.mix: dataset {entry['dataset']!r} has no rows loaded")
        if not entry.get("weight", 1.0) > 0:
            raise InputError(f"config: sft.mix: weight of {entry['dataset']!r} must be > 0")
    if n_total is None:
        n_total = sum(len(sources[e["dataset"]]) for e in mix)
    counts = _largest_remainder(n_total, [e.get("weight", 1.0) for e in mix])
    drawn, record = [], []
    for entry, count in zip(mix, counts):
        rows = sources[entry["dataset"]]
        if not rows and count:
            raise InputError(f"config: sft.mix: dataset {entry['dataset']!r} is empty")
        rng = random.Random(f"{seed}:mix:{entry['dataset']}")
        picked = []
        while len(picked) < count:
            order = list(range(len(rows)))
            rng.shuffle(order)
            picked.extend(order[: count - len(picked)])
        drawn.extend(rows[i] for i in picked)
        record.append(
            {
                "dataset": entry["dataset"],
                "weight": float(entry.get("weight", 1.0)),
                "rows_available": len(rows),
                "rows_drawn": count,
                "unique_rows_drawn": len(set(picked)),
            }
        )
    random.Random(f"{seed}:mix").shuffle(drawn)
    return drawn, record


def subsample(rows, n, seed, name):
    """`n` rows picked by a seeded draw, kept in file order (None or n >= len: all rows)."""
    if n is None or n >= len(rows):
        return list(rows)
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def prompt_completion(row, template, tokenizer):
    """One training pair. Trailing spaces of the prompt move to the completion: BPE merges
    "Answer: " + "42" into "Answer:" + " 42", so a prompt ending in a space is not a token
    prefix of prompt + completion; moving the space keeps the prompt/response token boundary
    where TRL puts it anyway, and every prompt token stays out of the loss."""
    prompt = render_prompt(row, template, tokenizer)
    completion = render_completion(row, template, tokenizer)
    stripped = prompt.rstrip(" \t")
    return {"prompt": stripped, "completion": prompt[len(stripped) :] + completion}


def assistant_turns(row, multi_turn_loss="last"):
    """The training rows of one validated row. A conversation (`messages`, kept by
    lmlab.data.formats) trains on its last answer (`last`), or (`all`) on every assistant
    turn: one row per answer, the conversation before it as the prompt, so each answer is in
    the loss once, with its history. A plain row is itself."""
    messages = row.get("messages")
    if not messages or multi_turn_loss == "last":
        return [row]
    rows = []
    for end, turn in enumerate(messages):
        if turn["role"] != "assistant":
            continue
        part = {**row, "instruction": "\n\n".join(m["content"] for m in messages[:end]), "input": "",
                "output": turn["content"], "messages": messages[: end + 1]}
        rows.append(part)
    return rows


def build_pairs(rows, template, tokenizer, max_length, multi_turn_loss="last"):
    """Prompt-completion pairs; rows whose prompt + completion exceed `max_length` tokens are
    dropped (truncating them would cut off the response and its EOS). Returns (pairs, dropped ids)."""
    pairs, dropped = [], []
    for row in rows:
        row_pairs = [prompt_completion(part, template, tokenizer) for part in assistant_turns(row, multi_turn_loss)]
        n_tokens = max(len(tokenizer(p["prompt"] + p["completion"])["input_ids"]) for p in row_pairs)
        if max_length and n_tokens > max_length:
            dropped.append(row["id"])
            continue
        pairs.extend(row_pairs)
    return pairs, dropped


def rows_fitting_every_template(rows, tokenizer, max_length):
    """Rows whose prompt + completion fit `max_length` under every template, and the ids of the
    others: validation losses of different templates are then measured on the same rows."""
    too_long = set()
    for template in TEMPLATE_NAMES:
        too_long.update(build_pairs(rows, template, tokenizer, max_length)[1])
    return [r for r in rows if r["id"] not in too_long], sorted(too_long)


def to_dataset(pairs):
    return Dataset.from_dict({"prompt": [p["prompt"] for p in pairs], "completion": [p["completion"] for p in pairs]})


def load_training_data(cfg, train_paths, validation_path, template, tokenizer, seed, manifest=None):
    """Everything training reads, checked before a model is loaded: the training and validation
    pairs, what was dropped, and the record of each file (sha256 from the manifest when it has one).

    `train_paths`: {dataset name: validated JSONL path} for the names in cfg["mix"].
    """
    manifest = manifest or {}
    missing = [m["dataset"] for m in cfg["mix"] if m["dataset"] not in train_paths]
    if missing:
        raise InputError(f"config: sft.mix: no input file for {missing}")
    sources = {name: read_jsonl(path) for name, path in train_paths.items()}
    train_rows, mix_record = sample_mix(sources, cfg["mix"], cfg["max_train_examples"], seed)
    for m in mix_record:
        m["sha256"] = manifest.get(m["dataset"], {}).get("sha256") or sha256_file(train_paths[m["dataset"]])
    eval_all = read_jsonl(validation_path)
    eval_rows = subsample(eval_all, cfg["max_eval_examples"], seed, "validation")
    train_pairs, dropped_train = build_pairs(train_rows, template, tokenizer, cfg["max_length"], cfg["multi_turn_loss"])
    kept_eval, dropped_eval = rows_fitting_every_template(eval_rows, tokenizer, cfg["max_length"])
    eval_pairs, _ = build_pairs(kept_eval, template, tokenizer, None)
    # Evaluation batches of similar lengths: less padding, same rows every time.
    eval_pairs.sort(key=lambda p: len(tokenizer(p["prompt"] + p["completion"])["input_ids"]))
    if not train_pairs:
        raise InputError(f"config: sft.max_length: {cfg['max_length']} drops every training row")
    validation_name = Path(validation_path).stem
    validation_record = {
        "dataset": validation_name,
        "sha256": manifest.get(validation_name, {}).get("sha256") or sha256_file(validation_path),
        "rows_available": len(eval_all),
    }
    return {
        "train_pairs": train_pairs,
        "eval_pairs": eval_pairs,
        "dropped_train": dropped_train,
        "dropped_eval": dropped_eval,
        "mix": mix_record,
        "validation": validation_record,
    }
