"""Work folders and checkpoints: which checkpoints belong to this run, and which one to resume.

A trainer writes `checkpoint-N` folders into a work folder that is not a declared output. The
run key (a hash of the training config, the data and the base model) is written beside them;
a work folder whose key differs holds another run's checkpoints and is emptied before this
run starts, so a changed config or changed data never resumes a stale run. A SIGKILL can
land while a checkpoint is written: only complete checkpoints are resumed.
"""

import hashlib
import json
import logging
import shutil
from pathlib import Path

from lmlab.core.io import read_json, sha256_tree, write_json

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")
KEY_FILE = "run_key.json"


def run_key(record):
    """sha256 of a JSON record (sorted keys, values exactly as given; other objects as str)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def content_hash(path):
    """sha256 of a file or folder; a base model folder by its base_model.json, which records
    its weights' hash (hashing that file avoids reading hundreds of MB on every run)."""
    record = Path(path) / "base_model.json"
    return sha256_tree(record if record.is_file() else path)


def claim_work_dir(work_dir, key):
    """Make `work_dir` this run's: a folder holding another run's checkpoints (another key, or
    no key) is emptied first. Call on the main process only."""
    work_dir = Path(work_dir)
    key_file = work_dir / KEY_FILE
    if work_dir.exists() and (not key_file.exists() or read_json(key_file).get("key") != key):
        log.info("work dir %s holds another run: starting over", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(key_file, {"key": key})


def checkpoint_step(path):
    """N of a `checkpoint-N` path (None for None)."""
    return int(Path(path).name.split("-")[-1]) if path else None


def checkpoint_complete(path):
    """All of a checkpoint's files are there and its trainer state (written last) parses."""
    path = Path(path)
    if not all((path / name).is_file() for name in CHECKPOINT_FILES):
        return False
    try:
        return "global_step" in read_json(path / "trainer_state.json")
    except (ValueError, OSError):
        return False


def last_checkpoint(work_dir):
    """The newest complete checkpoint-N folder of the work dir (as a string), or None."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None
    candidates = []
    for path in work_dir.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if path.is_dir() and suffix.isdigit():
            candidates.append((int(suffix), path))
    for _, path in sorted(candidates, reverse=True):
        if checkpoint_complete(path):
            return str(path)
        log.warning("skipping incomplete checkpoint %s", path)
    return None
