"""Validation of the raw JSONL inputs, and the manifests that record what was validated.

Every problem is reported as one line, `file:line: field: problem`, and validation of all
files finishes before anything is written, so bad input leaves no partial output behind.
"""

import json
import re
from collections import Counter
from pathlib import Path

from lmlab.core.errors import input_error
from lmlab.core.io import read_json, sha256_file, write_json, write_jsonl
from lmlab.core.text import fold
from lmlab.data.tasks import AGENT_CATEGORIES, FAILURE_MODES, LANGS, SFT_TASKS

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


def _from_messages(row, path, line):
    """Chat `messages` rows become instruction/input/output: the last assistant turn is the
    output, the user turns before it the instruction (a system turn is kept as its prefix)."""
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise input_error(path, line, "messages", "must be a non-empty array of {role, content}")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in (
            "system",
            "user",
            "assistant",
        ):
            raise input_error(path, line, "messages", "each message needs role (system|user|assistant) and string content")
    if messages[-1]["role"] != "assistant":
        raise input_error(path, line, "messages", "the last message must be the assistant's answer")
    prompt = "\n\n".join(m["content"] for m in messages[:-1])
    converted = {k: v for k, v in row.items() if k != "messages"}
    converted.update(instruction=prompt, input="", output=messages[-1]["content"])
    converted.setdefault("meta", {})
    return converted


def read_rows(path, kind):
    """Parse and check one raw file; returns its rows or raises InputError."""
    path = Path(path)
    if not path.exists():
        raise input_error(path, None, "file", "does not exist")
    raw = path.read_bytes()
    if not raw.strip():
        raise input_error(path, None, "file", "is empty")
    rows, seen = [], {}
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        if not line_bytes.strip():
            continue
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as err:
            raise input_error(path, number, "encoding", f"invalid UTF-8 at byte {err.start}") from None
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise input_error(path, number, "json", f"malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise input_error(path, number, "json", "each line must be a JSON object")
        if kind == "sft" and "messages" in row and "instruction" not in row:
            row = _from_messages(row, path, number)
        for field, (ftype, may_be_empty) in FIELDS[kind].items():
            if field not in row:
                if field == "meta":
                    row["meta"] = {}
                    continue
                raise input_error(path, number, field, "missing")
            value = row[field]
            if not isinstance(value, ftype) or isinstance(value, bool):
                raise input_error(
                    path, number, field, f"expected {TYPE_NAMES[ftype]}, got {type(value).__name__}"
                )
            if isinstance(value, str) and not may_be_empty and not value.strip():
                raise input_error(path, number, field, "is empty")
            choices = CHOICES.get((kind, field))
            if choices and value not in choices:
                raise input_error(path, number, field, f"{value!r} is not one of {', '.join(choices)}")
        if row["id"] in seen:
            raise input_error(path, number, "id", f"duplicate id {row['id']!r} (first on line {seen[row['id']]})")
        seen[row["id"]] = number
        row["_line"] = number
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


def manifest(path, rows, kind, generator):
    counts_task = Counter(r.get("task") or r.get("category") for r in rows if r.get("task") or r.get("category"))
    return {
        "file": str(path),
        "kind": kind,
        "sha256": sha256_file(path),
        "rows": len(rows),
        "per_task": dict(sorted(counts_task.items())),
        "per_lang": dict(sorted(Counter(r["lang"] for r in rows).items())),
        "per_task_lang": dict(
            sorted(Counter(f"{r.get('task') or r.get('category')}/{r['lang']}" for r in rows).items())
        ),
        "generator": generator,
    }


def validate_all(datasets, out_dir, generator_path=None):
    """`datasets`: {name: (path, kind)}. Validate everything, then write
    `<out_dir>/<name>.jsonl` and `<out_dir>/manifest.json`."""
    parsed = {name: (Path(path), kind, read_rows(path, kind)) for name, (path, kind) in datasets.items()}
    for train, held_out in (("sft_train", "sft_validation"), ("sft_train", "sft_test"), ("preferences_train", "preferences_test")):
        if train in parsed and held_out in parsed:
            tpath, kind, trows = parsed[train]
            hpath, _, hrows = parsed[held_out]
            check_overlap(trows, tpath, hrows, hpath, kind)
    generator = read_json(generator_path) if generator_path and Path(generator_path).exists() else None
    manifests = {}
    for name, (path, kind, rows) in parsed.items():
        manifests[name] = manifest(path, rows, kind, generator)
        write_jsonl(Path(out_dir) / f"{name}.jsonl", [{k: v for k, v in r.items() if k != "_line"} for r in rows])
    write_json(Path(out_dir) / "manifest.json", manifests)
    return manifests
