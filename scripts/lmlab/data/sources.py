"""Where raw rows come from: a JSONL file, a parquet or arrow file, a `datasets.save_to_disk`
folder, or (on clusters) a Hugging Face hub dataset with split and revision.

Each source yields `(line, row)` pairs, `line` being the 1-based line of a JSONL file or the
1-based row number of a table, so every error reads `file:line: field: problem` whatever the
source; and a record of what was read (its kind, sha256 of the file or folder, or the hub
revision and a sha256 over the rows) that goes into the data manifest.

Config form (`data.<name>` in config/schema.yaml): a path string, or
`{path: ..., split: ...}` (a save_to_disk folder holding several splits), or
`{hub: owner/name, split: ..., revision: ..., name: ...}`.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

from lmlab.core.errors import InputError, input_error
from lmlab.core.io import dumps, sha256_file, sha256_tree

TABLE_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow"}


def source_path(entry):
    """The local path a config entry names (None for a hub dataset): the rule's input."""
    if isinstance(entry, str):
        return entry
    return entry.get("path")


def source_label(entry):
    """How errors and the manifest name a source: its path, or `hub:<id>@<revision>/<split>`."""
    path = source_path(entry)
    if path is not None:
        return path
    return f"hub:{entry['hub']}@{entry.get('revision', 'main')}/{entry.get('split', 'train')}"


def source_kind(entry):
    path = source_path(entry)
    if path is None:
        return "hub"
    if Path(path).is_dir():
        return "save_to_disk"
    return TABLE_SUFFIXES.get(Path(path).suffix.lower(), "jsonl")


def _jsonl_records(path):
    raw = path.read_bytes()
    if not raw.strip():
        raise input_error(path, None, "file", "is empty")
    records = []
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
        records.append((number, row))
    return records


def _pick_split(data, label, split):
    """A DatasetDict needs a split; a Dataset is taken as it is."""
    from datasets import DatasetDict

    if isinstance(data, DatasetDict):
        if split is None:
            raise input_error(label, None, "split", f"the folder holds splits {sorted(data)}; name one (data.<name>.split)")
        if split not in data:
            raise input_error(label, None, "split", f"{split!r} is not one of {', '.join(sorted(data))}")
        return data[split]
    return data


def _table_rows(entry, kind):
    """Rows of a parquet/arrow file, a save_to_disk folder or a hub dataset, read through `datasets`."""
    import datasets

    label = source_label(entry)
    split = None if isinstance(entry, str) else entry.get("split")
    try:
        if kind == "parquet":
            # The parquet reader builds an arrow cache: keep it in a temporary folder, not ~/.cache.
            with tempfile.TemporaryDirectory() as cache:
                data = datasets.Dataset.from_parquet(source_path(entry), cache_dir=cache, keep_in_memory=True)
                rows = data.to_list()
            return rows
        if kind == "arrow":
            data = datasets.Dataset.from_file(source_path(entry), in_memory=True)
        elif kind == "save_to_disk":
            data = _pick_split(datasets.load_from_disk(source_path(entry)), label, split)
        else:
            if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
                raise input_error(label, None, "hub", "the hub is offline here (HF_HUB_OFFLINE=1): run data_validate where it is reachable")
            data = datasets.load_dataset(
                entry["hub"], entry.get("name"), split=entry.get("split", "train"), revision=entry["revision"]
            )
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001  (pyarrow and datasets raise many types; one line for all)
        first = str(err).splitlines()[0] if str(err) else ""
        raise input_error(label, None, "file", f"cannot be read as {kind} ({type(err).__name__}: {first})") from None
    return data.to_list()


def read_source(entry):
    """([(line, row)], source record) for one config entry; raises InputError on a source that
    is missing, empty or unreadable."""
    kind = source_kind(entry)
    label = source_label(entry)
    if kind != "hub" and not Path(source_path(entry)).exists():
        raise input_error(label, None, "file", "does not exist")
    if kind == "jsonl":
        path = Path(source_path(entry))
        return _jsonl_records(path), {"file": str(path), "source": "jsonl", "sha256": sha256_file(path)}
    rows = _table_rows(entry, kind)
    if not rows:
        raise input_error(label, None, "file", "is empty")
    record = {"source": kind}
    if kind == "hub":
        # No file to hash: the revision names the data, and the hash of the rows read pins it.
        record.update(hub=entry["hub"], split=entry.get("split", "train"), revision=entry["revision"],
                      name=entry.get("name"), sha256=_rows_sha256(rows))
    else:
        path = source_path(entry)
        record.update(file=str(path), sha256=sha256_tree(path))
        if not isinstance(entry, str) and entry.get("split"):
            record["split"] = entry["split"]
    return list(enumerate(rows, start=1)), record


def _rows_sha256(rows):
    digest = hashlib.sha256()
    for row in rows:
        digest.update(dumps(row).encode("utf-8") + b"\n")
    return digest.hexdigest()
