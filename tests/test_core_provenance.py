"""Provenance records carry hashes, params, config hash, git state, versions, hardware, seed."""

import hashlib
import time

from lmlab.core.provenance import build_record, config_hash


def test_record_fields_and_hashes(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("hello")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "a.txt").write_text("x")
    started = time.time()
    record = build_record("demo", [inp], [out_dir], {"k": 1}, {"seed": 3}, 3, started, {"template": "chat"})
    assert record["inputs"][str(inp)] == hashlib.sha256(b"hello").hexdigest()
    assert len(record["outputs"][str(out_dir)]) == 64
    assert record["params"] == {"k": 1} and record["seed"] == 3
    assert record["wildcards"] == {"template": "chat"}
    assert record["config_sha256"] == config_hash({"seed": 3})
    assert "torch" in record["packages"] and record["hardware"]["cpu_count"] >= 1
    assert set(record["git"]) == {"commit", "dirty"}
    assert record["started"] <= record["finished"]


def test_folder_hash_changes_when_a_file_changes(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "a.txt").write_text("x")
    first = build_record("demo", [], [out_dir], {}, {}, 0, time.time())["outputs"][str(out_dir)]
    (out_dir / "a.txt").write_text("y")
    second = build_record("demo", [], [out_dir], {}, {}, 0, time.time())["outputs"][str(out_dir)]
    assert first != second


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2, "d": 3}}) == config_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
