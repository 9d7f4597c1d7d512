"""The trainer core (lmlab.training), and the same checkpoint-and-resume test for every trainer
(SFT, reward model, DPO, ORPO, RLOO): a run stopped by SIGTERM (a checkpoint, exit 143), then
killed by SIGKILL, then started again, ends where an uninterrupted run ends.

Tolerance: on CPU in float32 the resumed run replays the same batches with the same RNG state,
so logged values agree to 1e-4 (observed: bit-identical) and adapter weights to 1e-5.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState

from lmlab.core.io import read_json, read_tsv, write_jsonl
from lmlab.core.launch import EXIT_PREEMPTED, resolve
from lmlab.models.base import load_tokenizer
from lmlab.training.checkpoints import (
    CHECKPOINT_FILES,
    KEY_FILE,
    checkpoint_step,
    claim_work_dir,
    last_checkpoint,
    run_key,
)
from lmlab.training.outputs import log_rows
from lmlab.training.signals import StopOnSignal, TrainingInterrupted
from test_sft import TINY_SFT
from tiny_models import SCRIPTS, sft_rows, tiny_base, tiny_sft_adapter, write_pairs

HERE = Path(__file__).resolve().parent
LOG_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-5
TIMING_COLUMNS = {"elapsed_s"}
# Every trainer: 6 steps, a checkpoint every 2. The first run is paused at its checkpoint 2 and
# sent SIGTERM (one more step, checkpoint 3, exit 143); the second resumes from 3, is paused at
# checkpoint 4 and killed; the third resumes from 4 and finishes.
STEPS, SAVE_STEPS = 6, 2
ALIGN_TRAIN = {"steps": STEPS, "batch_size": 2, "learning_rate": 1e-2, "save_steps": SAVE_STEPS, "logging_steps": 1}


# ---------------------------------------------------------------- the core -------------------


def test_incomplete_checkpoint_is_skipped(tmp_path):
    good, broken = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    for folder in (good, broken):
        folder.mkdir()
        for name in CHECKPOINT_FILES:
            (folder / name).write_text("x")
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (broken / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert last_checkpoint(tmp_path) == str(good)
    (broken / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert last_checkpoint(tmp_path) == str(broken) and checkpoint_step(last_checkpoint(tmp_path)) == 4
    (broken / "optimizer.pt").unlink()
    assert last_checkpoint(tmp_path) == str(good)
    assert last_checkpoint(tmp_path / "missing") is None


def test_a_work_dir_of_another_run_is_emptied(tmp_path):
    work = tmp_path / "work"
    key = run_key({"cfg": {"lr": 1e-7}, "data": "a"})
    assert key == run_key({"data": "a", "cfg": {"lr": 1e-7}})  # key order does not matter
    assert key != run_key({"cfg": {"lr": 2e-7}, "data": "a"})  # small numbers are not rounded away
    claim_work_dir(work, key)
    (work / "checkpoint-2").mkdir()
    claim_work_dir(work, key)
    assert (work / "checkpoint-2").exists() and read_json(work / KEY_FILE) == {"key": key}
    claim_work_dir(work, run_key({"other": 1}))
    assert not (work / "checkpoint-2").exists()
    (work / KEY_FILE).unlink()
    (work / "checkpoint-4").mkdir()
    claim_work_dir(work, key)  # no key recorded: not this run's either
    assert not (work / "checkpoint-4").exists()


def test_log_rows_merge_a_step_and_leave_out_the_summary():
    history = [
        {"eval_loss": 2.0, "step": 0},
        {"loss": 1.5, "learning_rate": 0.1, "step": 2, "step_time": 0.3, "train_runtime": 1.0},
        {"eval_loss": 1.4, "step": 2},
        {"loss": 1.2, "step": 4},
        {"train_loss": 1.3, "train_runtime": 9.0, "step": 4},
    ]
    assert log_rows(history) == [
        {"eval_loss": 2.0, "step": 0},
        {"loss": 1.5, "learning_rate": 0.1, "step": 2, "train_runtime": 1.0, "eval_loss": 1.4},
        {"loss": 1.2, "step": 4},
    ]


def test_stop_on_signal_saves_then_stops_and_restores_the_handlers():
    stop, state, control = StopOnSignal(), TrainerState(), TrainerControl()
    before = signal.getsignal(signal.SIGTERM)
    with stop.installed():
        assert signal.getsignal(signal.SIGTERM) == stop.handle
        stop.on_step_end(None, state, control)
        assert not control.should_save and not control.should_training_stop
        os.kill(os.getpid(), signal.SIGTERM)
        stop.on_step_end(None, state, control)
        assert control.should_save and not control.should_training_stop  # the checkpoint first
        stop.on_save(None, state, control)
        assert control.should_training_stop
    assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(TrainingInterrupted) as err:
        stop.raise_if_stopped()
    assert err.value.code == EXIT_PREEMPTED == 128 + signal.SIGTERM


# ---------------------------------------------------------------- every trainer --------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tiny_base(tmp_path_factory)
    sft = tiny_sft_adapter(tmp_path_factory, base)
    root = tmp_path_factory.mktemp("trainer-inputs")
    write_jsonl(root / "sft_train.jsonl", sft_rows(24))
    write_jsonl(root / "sft_validation.jsonl", sft_rows(6, prefix="v"))
    write_pairs(root / "pairs.jsonl", load_tokenizer(sft))
    return {"base": str(base), "sft": str(sft), "root": root}


def sft_run(inputs, folder):
    kwargs = {
        "base_dir": inputs["base"],
        "train_paths": {"sft_train": str(inputs["root"] / "sft_train.jsonl")},
        "validation_path": str(inputs["root"] / "sft_validation.jsonl"),
        "template": "minimal",
        "cfg": {**TINY_SFT, "max_steps": STEPS, "save_steps": SAVE_STEPS, "eval_on_start": False,
                "save_total_limit": 3},
        "seed": 5,
        "out_dir": str(folder / "out"), "timing_path": str(folder / "timing.json"),
        "work_dir": str(folder / "work"),
    }
    return "lmlab.sft.train:train_sft", kwargs, folder / "work"


def reward_run(inputs, folder):
    reward = {"steps": STEPS, "batch_size": 2, "learning_rate": 5e-3, "save_steps": SAVE_STEPS, "logging_steps": 1,
              "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
    kwargs = {"base_dir": inputs["base"], "pairs_path": str(inputs["root"] / "pairs.jsonl"), "reward": reward,
              "max_length": 64, "seed": 3, "out_dir": str(folder / "out"), "timing_path": str(folder / "timing.json"), "work_root": str(folder / "work")}
    return "lmlab.alignment.reward:train_reward_model", kwargs, folder / "work" / "checkpoints"


def pair_policy_kwargs(inputs, folder):
    return {"base_dir": inputs["base"], "sft_dir": inputs["sft"], "pairs_path": str(inputs["root"] / "pairs.jsonl"),
            "train": ALIGN_TRAIN, "beta": 0.1, "max_length": 128, "seed": 3, "out_dir": str(folder / "out"), "timing_path": str(folder / "timing.json"),
            "work_root": str(folder / "work")}


def dpo_run(inputs, folder):
    kwargs = {**pair_policy_kwargs(inputs, folder), "loss_type": "sigmoid", "sft_weight": 1.0}
    return "lmlab.alignment.dpo:train_dpo", kwargs, folder / "work" / "checkpoints"


def orpo_run(inputs, folder):
    return "lmlab.alignment.orpo:train_orpo", pair_policy_kwargs(inputs, folder), folder / "work" / "checkpoints"


def rloo_run(inputs, folder):
    rloo = {"prompts": 4, "num_generations": 2, "prompts_per_step": 2, "max_completion_length": 6,
            "temperature": 1.0, "top_p": 1.0, "beta": 0.05, "max_prompt_tokens": 200, "reward_max_length": 64}
    kwargs = {"base_dir": inputs["base"], "sft_dir": inputs["sft"], "sft_train": str(inputs["root"] / "sft_train.jsonl"),
              "train": ALIGN_TRAIN, "reward": "verifiable", "rloo": rloo, "seed": 3, "out_dir": str(folder / "out"), "timing_path": str(folder / "timing.json"),
              "work_root": str(folder / "work")}
    return "lmlab.alignment.rloo:train_rloo", kwargs, folder / "work" / "checkpoints"


TRAINERS = {"sft": sft_run, "reward_model": reward_run, "dpo": dpo_run, "orpo": orpo_run, "rloo": rloo_run}


def start(spec, kwargs_file, markers):
    markers.mkdir()
    env = dict(os.environ, PYTHONPATH=str(SCRIPTS), OMP_NUM_THREADS="2")
    cmd = [sys.executable, str(HERE / "resume_worker.py"), spec, str(kwargs_file), str(markers)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(proc, marker, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if marker.exists():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before {marker.name}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {marker.name} in time")


def adapter_tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def assert_same_run(reference, resumed):
    ref_log, new_log = read_tsv(reference / "train_log.tsv"), read_tsv(resumed / "train_log.tsv")
    assert [r["step"] for r in new_log] == [r["step"] for r in ref_log] == [str(s) for s in range(1, STEPS + 1)]
    for a, b in zip(ref_log, new_log):
        assert a.keys() == b.keys()
        for key in a.keys() - TIMING_COLUMNS:
            if a[key]:
                assert float(b[key]) == pytest.approx(float(a[key]), abs=LOG_TOLERANCE), (a["step"], key)
    ref_w, new_w = adapter_tensors(reference), adapter_tensors(resumed)
    assert ref_w.keys() == new_w.keys()
    diff = max((ref_w[k] - new_w[k]).abs().max().item() for k in ref_w)
    assert diff <= WEIGHT_TOLERANCE


def assert_counted_flops(cost, trainer):
    """Every alignment trainer counts its policy's tokens; DPO's reference log-probs and RLOO's
    sampling are forward passes without a backward pass, and the FLOP/s follow from the counts."""
    assert cost["tokens_trained"] > 0
    if trainer in ("dpo", "rloo"):
        assert cost["tokens_forward_only"] > 0
    n, n_trainable = cost["n_forward_params"], cost["n_trainable_params"]
    flops = (4 * n + 2 * n_trainable) * cost["tokens_trained"] + 2 * n * cost["tokens_forward_only"]
    assert cost["achieved_flops_per_s"] == pytest.approx(flops / cost["train_s"], rel=1e-6)
    assert 0 < cost["achieved_over_probe"] < 5


@pytest.mark.parametrize("trainer", TRAINERS)
def test_sigterm_then_sigkill_then_resume_matches_an_uninterrupted_run(trainer, inputs, tmp_path):
    spec, reference, _ = TRAINERS[trainer](inputs, tmp_path / "reference")
    spec, kwargs, work = TRAINERS[trainer](inputs, tmp_path / "interrupted")
    train = resolve(spec)
    train(**reference)  # uninterrupted, in this process
    if trainer != "sft":  # the SFT cost record is tested in test_sft
        assert_counted_flops(json.loads(Path(reference["timing_path"]).read_text()), trainer)
    out = Path(kwargs["out_dir"])
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(kwargs))
    procs = []
    try:
        # 1. SIGTERM at checkpoint 2: one more step, checkpoint 3, exit 143, no output.
        proc = start(spec, kwargs_file, tmp_path / "run1")
        procs.append(proc)
        wait_for(proc, tmp_path / "run1" / "saved-2")
        proc.send_signal(signal.SIGTERM)
        (tmp_path / "run1" / "release").touch()
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
        assert "saving a checkpoint" in err
        assert checkpoint_step(last_checkpoint(work)) == 3
        assert not out.exists()

        # 2. Resumes from checkpoint 3; SIGKILL at its next checkpoint (4): no output either.
        proc = start(spec, kwargs_file, tmp_path / "run2")
        procs.append(proc)
        wait_for(proc, tmp_path / "run2" / "saved-4")
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert checkpoint_step(last_checkpoint(work)) == 4
        assert not out.exists()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    # 3. Resumes from checkpoint 4 and runs to the end.
    train(**kwargs)
    assert "checkpoint-4" in (out / "README.md").read_text()  # the card records the resume point
    assert not work.exists()  # checkpoints are removed once the adapter is in place
    assert_same_run(Path(reference["out_dir"]), out)
