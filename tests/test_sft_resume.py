"""Checkpoint and resume: a run stopped by SIGTERM (saves a checkpoint, exits 143), then
killed by SIGKILL, then started again, ends where an uninterrupted run ends.

Tolerance: on CPU in float32 the resumed run replays the same batches with the same RNG state,
so losses agree to 1e-4 (observed: bit-identical) and adapter weights to 1e-5.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmlab.sft import train as sft
from lmlab.core.io import read_json, read_tsv, write_jsonl

from test_sft import SCRIPTS, TINY_SFT, sft_rows, tiny_base

LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-5
# Enough steps that the second (SIGKILL) run is still training when its new checkpoint lands.
RESUME_SFT = {**TINY_SFT, "max_steps": 10, "eval_on_start": False, "save_total_limit": 3}


def wait_for_checkpoint(proc, work, newer_than, timeout=90):
    """Poll until a complete checkpoint with a step > newer_than exists; return its step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sft.last_checkpoint(work)
        if found and int(Path(found).name.split("-")[1]) > newer_than:
            return int(Path(found).name.split("-")[1])
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before a checkpoint > {newer_than}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def start(args):
    env = dict(os.environ, PYTHONPATH=str(SCRIPTS), OMP_NUM_THREADS="2")
    return subprocess.Popen(
        [sys.executable, "-m", "lmlab.sft.train", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def adapter_tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def test_sigterm_then_sigkill_then_resume_matches_uninterrupted(tmp_path, request):
    base = tiny_base(request.config.cache)
    write_jsonl(tmp_path / "sft_train.jsonl", sft_rows(24))
    write_jsonl(tmp_path / "sft_validation.jsonl", sft_rows(6, prefix="v"))
    (tmp_path / "sft.json").write_text(json.dumps(RESUME_SFT))
    common = {
        "base_dir": base,
        "train_paths": {"sft_train": tmp_path / "sft_train.jsonl"},
        "validation_path": tmp_path / "sft_validation.jsonl",
        "template": "minimal",
        "seed": 5,
    }

    # Uninterrupted reference, in this process.
    reference = sft.train_sft(out_dir=tmp_path / "ref", work_dir=tmp_path / "ref-work", cfg=RESUME_SFT, **common)

    out, work = tmp_path / "models" / "minimal", tmp_path / "models" / ".work" / "minimal"
    args = sft.cli_args({**common, "out_dir": out, "work_dir": work}, tmp_path / "sft.json")

    # 1. SIGTERM after the first checkpoint: a checkpoint at the current step, exit 143, no output.
    proc = start(args)
    first = wait_for_checkpoint(proc, work, newer_than=0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == sft.EXIT_PREEMPTED, err[-2000:]
    assert "saving a checkpoint" in err
    after_term = int(Path(sft.last_checkpoint(work)).name.split("-")[1])
    assert after_term >= first
    assert not out.exists()

    # 2. Resumes from there; SIGKILL as soon as it wrote a newer checkpoint: no output either.
    proc = start(args)
    second = wait_for_checkpoint(proc, work, newer_than=after_term)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()

    # 3. Runs to the end from the newest complete checkpoint.
    proc = start(args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert f"resuming from {work}/checkpoint-" in err
    resumed = read_json(out / "metrics.json")
    cost = read_json(out / "cost.json")
    assert cost["resumed"] and cost["steps_this_session"] <= RESUME_SFT["max_steps"] - second
    assert "resumed from a checkpoint: checkpoint-" in (out / "README.md").read_text()
    assert not work.exists()  # checkpoints are removed once the adapter is in place

    assert resumed["global_step"] == reference["global_step"] == RESUME_SFT["max_steps"]
    assert resumed["final_train_loss"] == pytest.approx(reference["final_train_loss"], abs=LOSS_TOLERANCE)
    assert resumed["final_eval_loss"] == pytest.approx(reference["final_eval_loss"], abs=LOSS_TOLERANCE)
    assert resumed["best_checkpoint_step"] == reference["best_checkpoint_step"]
    # The whole loss curve, including the steps replayed after each interruption.
    ref_log = read_tsv(tmp_path / "ref" / "train_log.tsv")
    new_log = read_tsv(out / "train_log.tsv")
    assert [r["step"] for r in new_log] == [r["step"] for r in ref_log]
    for a, b in zip(ref_log, new_log):
        for key in ("loss", "eval_loss"):
            if a[key]:
                assert float(b[key]) == pytest.approx(float(a[key]), abs=LOSS_TOLERANCE), (a["step"], key)
        assert a["tokens_seen"] == b["tokens_seen"]
    ref_w, new_w = adapter_tensors(tmp_path / "ref"), adapter_tensors(out)
    assert ref_w.keys() == new_w.keys()
    weight_diff = max((ref_w[k] - new_w[k]).abs().max().item() for k in ref_w)
    loss_diff = max(abs(float(a["loss"]) - float(b["loss"])) for a, b in zip(ref_log, new_log) if a["loss"])
    print(f"resume: max |loss diff| = {loss_diff:.3g}, max |adapter weight diff| = {weight_diff:.3g}")
    assert weight_diff <= WEIGHT_TOLERANCE


def test_incomplete_checkpoint_is_skipped(tmp_path):
    good, broken = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    for folder in (good, broken):
        folder.mkdir()
        for name in sft.CHECKPOINT_FILES:
            (folder / name).write_text("x")
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (broken / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert sft.last_checkpoint(tmp_path) == str(good)
    (broken / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert sft.last_checkpoint(tmp_path) == str(broken)
    (broken / "optimizer.pt").unlink()
    assert sft.last_checkpoint(tmp_path) == str(good)
