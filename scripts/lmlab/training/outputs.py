"""What a trainer leaves behind: train_log.tsv rows, the model card, and the output folder
published in one rename, so it exists only when it is complete."""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

from lmlab.core.io import write_tsv

# Timing fields differ run to run; the log keeps only what the seed determines.
TIMING_KEYS = ("step_time",)


def log_rows(log_history):
    """One row per logged step from a trainer's log_history: the step's entries (training,
    evaluation) merged, timing fields and the final summary entry (train_loss) left out."""
    by_step = {}
    for entry in log_history:
        if "step" not in entry or "train_loss" in entry:
            continue
        row = by_step.setdefault(entry["step"], {})
        row.update((k, v) for k, v in entry.items() if k not in TIMING_KEYS)
    return [by_step[step] for step in sorted(by_step)]


def write_train_log(path, log_history):
    """train_log.tsv with every logged key: step, epoch, then the others sorted."""
    rows = log_rows(log_history)
    keys = sorted({k for r in rows for k in r if k not in ("step", "epoch")})
    write_tsv(path, rows, ["step", "epoch", *keys], digits=6)
    return rows


def final_metrics(rows, keys):
    """Mean of each key over the last logged quarter of training (at least one row)."""
    out = {}
    for key in keys:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            tail = values[-max(1, len(values) // 4) :]
            out[key] = sum(tail) / len(tail)
            out[f"{key}_first"] = values[0]
    return out


def count_by(rows, key):
    """{value: rows with it}, sorted by value."""
    return dict(sorted(Counter(r[key] for r in rows).items()))


def jsonable(value):
    """`value` with anything JSON cannot hold as str (sets sorted into lists)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def kv_lines(mapping):
    """Markdown list lines `- `key`: value` (values as JSON)."""
    return [f"- `{k}`: {json.dumps(v, sort_keys=True, ensure_ascii=False)}" for k, v in mapping.items()]


def write_card(path, title, sections):
    """README.md model card: a title and `## heading` sections of markdown lines."""
    lines = [f"# {title}", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", *body, ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")


def canonical_adapter_config(folder):
    """Rewrite a saved adapter_config.json with its module lists sorted and its keys in order.

    PEFT keeps target_modules in a set and writes it in the process's hash order, so two
    identical trainings wrote different files (and every hash of the adapter folder followed).
    PeftModel.from_pretrained reads the sorted file the same way."""
    path = Path(folder) / "adapter_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("target_modules", "modules_to_save", "exclude_modules"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def staging_dir(out_dir):
    """An empty temporary sibling of `out_dir` to assemble the output in."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish(staging, out_dir):
    """Rename a finished folder into the declared output (atomic on one filesystem)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, out_dir)
