"""The SFT splits: one maker per task family and the balanced, shuffled rows of a split."""

from __future__ import annotations

import random

from lmlab.data.generate.arithmetic import make_arithmetic
from lmlab.data.generate.common import SFT_ROWS_PER_TASK, unique_item
from lmlab.data.generate.json_extraction import make_json_extraction
from lmlab.data.generate.kb_qa import make_kb_qa
from lmlab.data.generate.long_context import LONG_CONTEXT_DEPTHS, make_long_context_qa
from lmlab.data.generate.refusal import make_refusal
from lmlab.data.generate.sentiment import SENTIMENT_LABELS, make_sentiment
from lmlab.data.generate.summarization import make_summarization
from lmlab.data.tasks import LANGS, SFT_TASKS


def sft_makers(facts: list[dict], kb_pairs: list[tuple[int, str]]) -> dict:
    """{task: make(rng, lang) -> item} for the families that need no balanced stratum."""
    def kb_qa(rng, lang):
        return make_kb_qa(rng, lang, facts, kb_pairs)
    return {"json_extraction": make_json_extraction, "arithmetic": make_arithmetic, "sentiment": make_sentiment,
            "summarization": make_summarization, "kb_qa": kb_qa, "refusal": make_refusal}


def make_sft_split(rng: random.Random, split: str, seen: set[str], facts: list[dict],
                   kb_pairs: list[tuple[int, str]]) -> list[dict]:
    """SFT_ROWS_PER_TASK[split] rows per task, half per language, shuffled. Balanced strata
    (sentiment labels, refusal reasons, long-context depths) cycle with the row index."""
    makers = sft_makers(facts, kb_pairs)
    rows = []
    for task in SFT_TASKS:
        for i in range(SFT_ROWS_PER_TASK[split]):
            lang = LANGS[i % 2]
            if task == "long_context_qa":
                depth = LONG_CONTEXT_DEPTHS[(i // 2) % len(LONG_CONTEXT_DEPTHS)]
                make = lambda r, l, d=depth: make_long_context_qa(r, l, d)  # noqa: E731
            elif task == "sentiment":
                label = SENTIMENT_LABELS[(i // 2) % 3]
                make = lambda r, l, lab=label: make_sentiment(r, l, lab)  # noqa: E731
            elif task == "refusal":
                reason = ("unsafe", "invalid")[(i // 2) % 2]
                make = lambda r, l, why=reason: make_refusal(r, l, why)  # noqa: E731
            else:
                make = makers[task]
            item = unique_item(make, rng, lang, seen)
            rows.append({"task": task, "lang": lang, "instruction": item["instruction"], "input": item["input"],
                         "output": item["output"], "meta": item["meta"]})
    rng.shuffle(rows)
    return [{"id": f"sft-{split}-{i + 1:05d}", **row} for i, row in enumerate(rows)]
