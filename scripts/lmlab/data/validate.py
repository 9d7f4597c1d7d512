"""Validation of the raw JSONL inputs, and the manifests that record what was validated.

Every problem is reported as one line, `file:line: field: problem`, and validation of all
files finishes before anything is written, so bad input leaves no partial output behind.
"""

import json
import re
from collections import Counter
from pathlib import Path

from lmlab.core.errors import input_error
from lmlab.core.io import read_json, write_json, write_jsonl
from lmlab.core.text import fold
from lmlab.data.formats import UNDETERMINED_LANG, convert, detect_lang, has_text
from lmlab.data.sources import read_source, source_label
from lmlab.data.tasks import AGENT_CATEGORIES, FAILURE_MODES, LANGS, META_NEEDED, SFT_TASKS

# Required fields per kind: name -> (type, may be empty).
FIELDS = {
    "sft": {
        "id": (str, False),
        "task": (str, False),
        "lang": (str, False),
        "instruction": (str, False),
        "input": (str, True),
        "output": (str, False),
        "meta": (dict, True),
    },
    "preferences": {
        "id": (str, False),
        "task": (str, False),
        "lang": (str, False),
        "prompt": (str, False),
        "chosen": (str, False),
        "rejected": (str, False),
        "failure_mode": (str, False),
    },
    "kb": {"id": (str, False), "lang": (str, False), "title": (str, False), "text": (str, False)},
    "agent_tasks": {
        "id": (str, False),
        "lang": (str, False),
        "category": (str, False),
        "question": (str, False),
        "answer": (str, False),
        "gold_calls": (list, True),
    },
}
CHOICES = {
    ("sft", "task"): SFT_TASKS,
    ("sft", "lang"): LANGS,
    ("preferences", "failure_mode"): FAILURE_MODES,
    ("preferences", "lang"): LANGS,
    ("kb", "lang"): LANGS,
    ("agent_tasks", "category"): AGENT_CATEGORIES,
    ("agent_tasks", "lang"): LANGS,
}
TYPE_NAMES = {str: "string", dict: "object", list: "array"}


def normalize_text(text):
    """Casefold, strip accents, collapse non-alphanumerics: the overlap check's key."""
    return re.sub(r"[\W_]+", " ", fold(text)).strip()


# Optional fields and their defaults (every kind: `id` = "<file stem>:<line>", `lang` guessed
# by lmlab.data.formats.detect_lang, "und" when unsure). The README lists them.
DEFAULT_TASK = "general"
UNLABELLED = "unlabelled"
DEFAULTS = {
    "sft": {"task": DEFAULT_TASK, "input": "", "meta": {}},
    "preferences": {"task": DEFAULT_TASK, "failure_mode": UNLABELLED},
    "kb": {},
    "agent_tasks": {},
}
CHOICES[("sft", "task")] = (*SFT_TASKS, DEFAULT_TASK)
CHOICES[("preferences", "failure_mode")] = (*FAILURE_MODES, UNLABELLED)
for _key in [k for k in CHOICES if k[1] == "lang"]:
    CHOICES[_key] = (*LANGS, UNDETERMINED_LANG)

# The text a language guess reads, per kind: the prompt side (an answer may be a translation).
LANG_TEXT = {"sft": ("instruction", "input"), "preferences": ("prompt",), "kb": ("title", "text"),
             "agent_tasks": ("question",)}
# Text fields that must hold a letter or digit: without one a row carries no signal.
SIGNAL_FIELDS = {"sft": ("instruction", "output"), "preferences": ("prompt", "chosen", "rejected"), "kb": ("text",),
                 "agent_tasks": ("question",)}


def squeeze(text):
    """Text up to whitespace: stripped, inner runs of whitespace as one space."""
    return " ".join(text.split())


def _check_field(row, kind, field, path, number, defaulted):
    ftype, may_be_empty = FIELDS[kind][field]
    if row.get(field) is None:
        if field in DEFAULTS[kind]:
            default = DEFAULTS[kind][field]
            row[field] = dict(default) if isinstance(default, dict) else default
            defaulted.append(field)
            return
        if field == "id":
            row["id"] = f"{Path(path).stem}:{number}"
            defaulted.append(field)
            return
        if field == "lang":
            defaulted.append(field)  # guessed once the text fields are checked
            return
        raise input_error(path, number, field, "missing")
    value = row[field]
    if not isinstance(value, ftype) or isinstance(value, bool):
        raise input_error(path, number, field, f"expected {TYPE_NAMES[ftype]}, got {type(value).__name__}")
    if isinstance(value, str) and not may_be_empty and not value.strip():
        raise input_error(path, number, field, "is empty")
    choices = CHOICES.get((kind, field))
    if choices and value not in choices:
        raise input_error(path, number, field, f"{value!r} is not one of {', '.join(choices)}")


def check_signal(row, kind, path, number):
    """Rows a user would not want to train or evaluate on, once normalised."""
    for field, value in row.items():
        if isinstance(value, str) and "\ufffd" in value:
            raise input_error(path, number, field, "contains U+FFFD (text decoded with the wrong encoding)")
    for field in SIGNAL_FIELDS[kind]:
        if not has_text(row[field]):
            raise input_error(path, number, field, "has no letter or digit (no signal to train or evaluate on)")
    if kind == "sft":
        output = normalize_text(row["output"])
        prompts = {normalize_text(row["instruction"]), normalize_text(row["instruction"] + "\n" + row["input"])}
        if row["input"].strip():
            prompts.add(normalize_text(row["input"]))
        if output in prompts:
            raise input_error(path, number, "output", "repeats the prompt once normalised (no training signal)")
    # A preference may be about format alone (`wrong_format`), so answers compare up to whitespace only.
    if kind == "preferences" and squeeze(row["chosen"]) == squeeze(row["rejected"]):
        raise input_error(path, number, "rejected", "same as chosen up to whitespace (no preference signal)")


def duplicate_key(row, kind):
    """Rows with the same key in one file are the same example twice (None: not checked)."""
    if kind == "sft":
        return prompt_key(row, kind), normalize_text(row["output"])
    if kind == "preferences":
        return prompt_key(row, kind), squeeze(row["chosen"]), squeeze(row["rejected"])
    return None


# What read_rows adds to each row for the checks and the manifest, left out of the output.
BOOKKEEPING = ("_line", "_format", "_defaulted")
DUPLICATE_FIELD = {"sft": ("instruction+input", "same prompt and output"),
                   "preferences": ("prompt", "same prompt, chosen and rejected")}


def read_rows(path, kind, records=None):
    """Parse, convert and check one raw source; returns its internal rows (each with `_line`,
    `_format` and `_defaulted`) or raises InputError. `records`: the source's (line, row) pairs
    (lmlab.data.sources.read_source), read from the JSONL file `path` when None."""
    if records is None:
        records, _ = read_source(str(path))
    rows, seen, examples = [], {}, {}
    for number, row in records:
        if not isinstance(row, dict):
            raise input_error(path, number, "json", "each line must be a JSON object")
        row, fmt = convert(row, kind, path, number)
        defaulted = []
        for field in FIELDS[kind]:
            _check_field(row, kind, field, path, number, defaulted)
        if "lang" in defaulted:
            row["lang"] = detect_lang("\n".join(row[f] for f in LANG_TEXT[kind]))
        check_signal(row, kind, path, number)
        if row["id"] in seen:
            raise input_error(path, number, "id", f"duplicate id {row['id']!r} (first on line {seen[row['id']]})")
        seen[row["id"]] = number
        key = duplicate_key(row, kind)
        if key is not None:
            if key in examples:
                field, what = DUPLICATE_FIELD[kind]
                raise input_error(path, number, field, f"{what} as line {examples[key]} once normalised (a duplicate row)")
            examples[key] = number
        row.update(_line=number, _format=fmt, _defaulted=defaulted)
        rows.append(row)
    return rows


def prompt_key(row, kind):
    if kind == "sft":
        return normalize_text(row["instruction"] + "\n" + row["input"])
    if kind == "preferences":
        return normalize_text(row["prompt"])
    if kind == "agent_tasks":
        return normalize_text(row["question"])
    return normalize_text(row.get("text", ""))


def check_overlap(train_rows, train_path, other_rows, other_path, kind):
    """Exact or normalised-text overlap between a training file and a held-out file."""
    train_keys = {prompt_key(r, kind): r["_line"] for r in train_rows}
    field = {"sft": "instruction+input", "preferences": "prompt"}[kind]
    for row in other_rows:
        key = prompt_key(row, kind)
        if key in train_keys:
            raise input_error(
                other_path,
                row["_line"],
                field,
                f"overlaps {train_path}:{train_keys[key]} (same text after normalisation)",
            )


def manifest(source, rows, kind, generator):
    """What was validated: the source (file and sha256, or hub id, split, revision and a hash of
    the rows), the counts, and how each row was converted (`formats`: rows per input format;
    `defaulted`: rows per field filled with its default)."""
    counts_task = Counter(r.get("task") or r.get("category") for r in rows if r.get("task") or r.get("category"))
    return {
        **source,
        "kind": kind,
        "rows": len(rows),
        "formats": dict(sorted(Counter(r["_format"] for r in rows).items())),
        "defaulted": dict(sorted(Counter(f for r in rows for f in r["_defaulted"]).items())),
        "per_task": dict(sorted(counts_task.items())),
        "per_lang": dict(sorted(Counter(r["lang"] for r in rows).items())),
        "per_task_lang": dict(
            sorted(Counter(f"{r.get('task') or r.get('category')}/{r['lang']}" for r in rows).items())
        ),
        "generator": generator,
    }


# Files whose rows a stage scores by their labels: the label, and the stage's one-line reason.
LABELS_NEEDED = {"sft_test": "the evaluation scores each sft_test item by its task family"}


def check_labels(name, path, rows):
    """A file a stage scores by task needs a study task on every row, and the meta fields that
    task's metric reads (lmlab.data.tasks.META_NEEDED)."""
    if name not in LABELS_NEEDED:
        return
    for row in rows:
        if row["task"] not in SFT_TASKS:
            raise input_error(path, row["_line"], "task", f"{'missing' if 'task' in row['_defaulted'] else repr(row['task'])}: "
                              f"{LABELS_NEEDED[name]}, one of {', '.join(SFT_TASKS)}")
        for key in META_NEEDED.get(row["task"], ()):
            if key not in row["meta"]:
                raise input_error(path, row["_line"], f"meta.{key}", f"missing: the {row['task']} metric reads it")


def validate_all(datasets, out_dir, generator_path=None):
    """`datasets`: {name: (source, kind)}, a source being a path or a config entry of
    lmlab.data.sources. Validate everything, then write `<out_dir>/<name>.jsonl` and
    `<out_dir>/manifest.json`."""
    parsed = {}
    for name, (entry, kind) in datasets.items():
        records, source = read_source(str(entry) if isinstance(entry, Path) else entry)
        label = source_label(str(entry) if isinstance(entry, Path) else entry)
        rows = read_rows(label, kind, records)
        check_labels(name, label, rows)
        parsed[name] = (label, kind, rows, source)
    for train, held_out in (("sft_train", "sft_validation"), ("sft_train", "sft_test"), ("preferences_train", "preferences_test")):
        if train in parsed and held_out in parsed:
            tpath, kind, trows, _ = parsed[train]
            hpath, _, hrows, _ = parsed[held_out]
            check_overlap(trows, tpath, hrows, hpath, kind)
    generator = read_json(generator_path) if generator_path and Path(generator_path).exists() else None
    manifests = {}
    for name, (_, kind, rows, source) in parsed.items():
        manifests[name] = manifest(source, rows, kind, generator)
        write_jsonl(Path(out_dir) / f"{name}.jsonl", [{k: v for k, v in r.items() if k not in BOOKKEEPING} for r in rows])
    write_json(Path(out_dir) / "manifest.json", manifests)
    return manifests
