"""Scoring of one evaluation cell: per-item metrics of its generations, with their cost
fields, and their means by task and overall.

The per-item metrics themselves are lmlab.data.metrics'; this module applies them to
generation rows and writes the files the rules ask for.
"""

from lmlab.core.io import read_jsonl, write_jsonl, write_tsv
from lmlab.data.metrics import aggregate, score_item

# Generation fields copied into every scored row (cost per example, and what errors need).
CARRIED_FIELDS = ("tokens_in", "tokens_out", "truncated", "stopped_at_eos")


def score_rows(gen_rows, rouge_threshold):
    """metrics.score_item on every generation row, plus cost fields and `hit_max_new_tokens`."""
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
    scored = score_rows(read_jsonl(gen_path), rouge_threshold)
    write_jsonl(out_jsonl, scored)
    aggregates = aggregate(scored)
    write_tsv(out_tsv, aggregates, aggregate_columns(aggregates))
    return scored
