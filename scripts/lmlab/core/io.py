"""File helpers: sha256, atomic writes, JSONL/JSON/TSV with a fixed byte format.

Every writer goes through `atomic_write`, so a step that fails leaves no partial file, and
every writer fixes key order and float formatting, so equal data gives equal bytes.
"""

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Marker files Snakemake writes into folder outputs after the job (directory() outputs get a
# timestamp file): not part of the result, so left out of its hash, which then equals the one
# the job recorded and the one every consumer records.
TREE_IGNORED = (".snakemake_timestamp",)


def sha256_tree(path):
    """Hash of a folder: sha256 over sorted (relative path, file sha256) pairs, Snakemake's
    marker files left out."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in TREE_IGNORED):
        digest.update(f"{file.relative_to(path).as_posix()}\t{sha256_file(file)}\n".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Write to a temporary file beside `path` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
        # mkstemp creates 0600; results should be readable like any other file (shared HPC groups).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _round_floats(obj, digits):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def dumps(obj, digits=6):
    """Canonical JSON for one record: sorted keys, UTF-8, floats rounded to `digits`."""
    return json.dumps(_round_floats(obj, digits), ensure_ascii=False, sort_keys=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path, rows, digits=6):
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(dumps(row, digits) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_json(path, obj, digits=6):
    with atomic_write(path) as handle:
        json.dump(_round_floats(obj, digits), handle, ensure_ascii=False, sort_keys=True, indent=2)
        handle.write("\n")


def format_cell(value, digits=4):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if value is None:
        return ""
    return str(value)


def tsv_text(rows, columns=None, digits=4):
    """TSV of dict rows with fixed column order and float format (byte-stable)."""
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(c), digits) for c in columns])
    return buffer.getvalue()


def write_tsv(path, rows, columns=None, digits=4):
    with atomic_write(path) as handle:
        handle.write(tsv_text(rows, columns, digits))


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
