"""What every part of the generator shares: version and seed, the per-stage random
streams, row counts and file names, prompt normalisation for de-duplication, and small text
helpers.

Pure standard library on purpose: one `random.Random` per stage, seeded from a string
built from the seed and the stage name, so the same seed reproduces every file byte for
byte on any machine (CPython seeds `Random` from a str through SHA-512, and its Mersenne
Twister and `choice`/`randint`/`shuffle` have been stable since 3.2; checked on 3.11).
No set or dict of strings is ever iterated to decide output order, because str hashing is
randomised per process.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from lmlab.core.io import atomic_write
from lmlab.core.text import fold

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 1234
# Rows per task family and split; test is 50 per family (350 rows), as the evaluation expects.
# Long-context items cost the most to evaluate on a CPU; they still get the same count.
SFT_ROWS_PER_TASK = {"test": 50, "validation": 30, "train": 300}

SFT_FILES = {split: f"sft_{split}.jsonl" for split in ("train", "validation", "test")}
PREFERENCE_FILES = {split: f"preferences_{split}.jsonl" for split in ("train", "test")}
KB_FILE = "kb.jsonl"
AGENT_FILE = "agent_tasks.jsonl"
GENERATOR_FILE = "GENERATOR.json"
DATA_FILES = (
    SFT_FILES["train"],
    SFT_FILES["validation"],
    SFT_FILES["test"],
    PREFERENCE_FILES["train"],
    PREFERENCE_FILES["test"],
    KB_FILE,
    AGENT_FILE,
)


def stage_rng(seed: int, stage: str) -> random.Random:
    """An independent, reproducible stream per stage, so adding rows to one file
    does not reshuffle the others."""
    return random.Random(f"lmlab-datagen:{GENERATOR_VERSION}:{seed}:{stage}")


def normalize_prompt(text: str) -> str:
    """Casefold, strip accents, collapse every run of non-alphanumerics to one space.
    Two prompts that differ only in case, accents or punctuation count as the same."""
    return re.sub(r"[^0-9a-z]+", " ", fold(text)).strip()


def sft_prompt_key(row: dict) -> str:
    return normalize_prompt(row["instruction"] + "\n" + row["input"])


def compact_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows).encode("utf-8")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def ascii_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", fold(text))


def ordinal_en(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def word_count(text: str) -> int:
    return len(text.split())


def unique_item(make, rng: random.Random, lang: str, seen: set[str], key=sft_prompt_key, tries: int = 2000):
    """Draw items until one whose normalised prompt is new; record it in `seen`."""
    for _ in range(tries):
        item = make(rng, lang)
        item_key = key(item)
        if item_key not in seen:
            seen.add(item_key)
            return item
    raise RuntimeError(f"could not draw a new {getattr(make, '__name__', 'item')} item in {tries} tries")
