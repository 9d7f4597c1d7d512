"""Seeded generator of lmlab's committed raw data (`data/raw/*.jsonl`): `write_dataset`.

`python scripts/generate_data.py --seed 1234 --out data/raw` rebuilds every file byte for
byte (see `common` for how the randomness is made reproducible). The parts, one module
each: `common` (seed, streams, file names, shared helpers), `names` (word lists and
invented entities), `kb` (knowledge base), one module per SFT task family
(`json_extraction`, `arithmetic`, `sentiment`, `summarization`, `kb_qa`, `refusal`,
`long_context`), `sft` (the SFT splits), `preferences`, `agent_tasks`, and `datasheet`
(the count tables of data/README.md). The formats are fixed in docs/CONVENTIONS.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lmlab.core.io import write_json
from lmlab.data.generate.agent_tasks import make_agent_tasks
from lmlab.data.generate.common import (
    AGENT_FILE,
    DATA_FILES,
    DEFAULT_SEED,
    GENERATOR_FILE,
    GENERATOR_VERSION,
    KB_FILE,
    PREFERENCE_FILES,
    SFT_FILES,
    jsonl_bytes,
    stage_rng,
    write_bytes_atomic,
)
from lmlab.data.generate.datasheet import count_table, update_datasheet
from lmlab.data.generate.kb import kb_rows, make_kb
from lmlab.data.generate.kb_qa import split_kb_pairs
from lmlab.data.generate.preferences import PREFERENCE_ROWS, make_preferences
from lmlab.data.generate.sft import make_sft_split

# The entry points a caller needs; the datasheet's marker names `count_table` here.
__all__ = ["DEFAULT_SEED", "build_dataset", "count_table", "update_datasheet", "write_dataset"]

CANONICAL_COMMAND = "python scripts/generate_data.py --seed {seed} --out data/raw"


def build_dataset(seed: int = DEFAULT_SEED) -> dict[str, list[dict]]:
    """All files as rows, keyed by file name. Splits are drawn test-first and share one set of
    normalised prompts, so no later split can repeat an earlier one's prompt."""
    facts = make_kb(seed)
    kb_pairs = split_kb_pairs(stage_rng(seed, "kb-pairs"), facts)
    seen: set[str] = set()
    files: dict[str, list[dict]] = {KB_FILE: kb_rows(facts)}
    for split in ("test", "validation", "train"):
        files[SFT_FILES[split]] = make_sft_split(stage_rng(seed, f"sft-{split}"), split, seen, facts, kb_pairs[split])
    for split in ("test", "train"):
        files[PREFERENCE_FILES[split]] = make_preferences(stage_rng(seed, f"preferences-{split}"),
                                                          PREFERENCE_ROWS[split], split, seen, facts, kb_pairs["train"])
    files[AGENT_FILE] = make_agent_tasks(seed, facts)
    return {name: files[name] for name in DATA_FILES}


def write_dataset(out_dir: Path | str, seed: int = DEFAULT_SEED) -> dict:
    """Write every data file and GENERATOR.json (version, seed, rows and sha256 per file)."""
    out_dir = Path(out_dir)
    manifest = {"generator": "scripts/lmlab/data/generate/", "version": GENERATOR_VERSION, "seed": seed,
                "command": CANONICAL_COMMAND.format(seed=seed),
                "random": "random.Random seeded per stage with 'lmlab-datagen:<version>:<seed>:<stage>'",
                "files": {}}
    for name, rows in build_dataset(seed).items():
        data = jsonl_bytes(rows)
        write_bytes_atomic(out_dir / name, data)
        manifest["files"][name] = {"rows": len(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_json(out_dir / GENERATOR_FILE, manifest)
    return manifest
