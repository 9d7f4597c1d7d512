"""lmlab.core.launch: one way to run a training function single-process or under `accelerate launch` (DDP)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.core import launch
from lmlab.core.io import read_json, write_json


def test_two_processes_build_an_accelerate_multi_gpu_command(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, env):
        seen["cmd"], seen["env"] = cmd, env
        kwargs_file = Path(cmd[-1])
        seen["kwargs"] = json.loads(kwargs_file.read_text())
        # What the main launched process leaves behind on success.
        kwargs_file.with_name("write_json.result.json").write_text('{"ok": 1}')
        return 0, None

    monkeypatch.setattr(launch, "_run_forwarding_signals", fake_run)
    result = launch.run(
        write_json, num_processes=2, launch_dir=tmp_path / "launch", path=tmp_path / "out.json", obj={"a": [1, 2]}
    )
    cmd = seen["cmd"]
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert int(cmd[cmd.index("--main_process_port") + 1]) > 0
    assert cmd[-4:-1] == ["-m", "lmlab.core.launch", "lmlab.core.io:write_json"]
    assert Path(cmd[-1]) == tmp_path / "launch" / "write_json.kwargs.json"
    # Paths cross as strings, everything else as it is.
    assert seen["kwargs"] == {"path": str(tmp_path / "out.json"), "obj": {"a": [1, 2]}}
    assert str(launch.SCRIPTS_DIR) in seen["env"]["PYTHONPATH"].split(os.pathsep)
    assert result == {"ok": 1}


def test_one_process_calls_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "_run_forwarding_signals", lambda *a: pytest.fail("must not launch"))
    calls = []

    def train(**kwargs):  # not an lmlab function: fine in-process, no JSON needed
        calls.append(kwargs)
        return "done"

    callback = object()
    assert launch.run(train, num_processes=1, callbacks=[callback]) == "done"
    assert calls == [{"callbacks": [callback]}]


def test_inside_a_launched_process_calls_in_process(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(launch, "_run_forwarding_signals", lambda *a: pytest.fail("must not launch"))
    assert launch.run(lambda: 7, num_processes=4) == 7


def test_arguments_that_cannot_cross_are_refused_before_launching(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "_run_forwarding_signals", lambda *a: pytest.fail("must not launch"))
    with pytest.raises(TypeError, match="callbacks.*cannot cross"):
        launch.run(write_json, num_processes=2, launch_dir=tmp_path, path="x", obj={}, callbacks=[object()])
    with pytest.raises(ValueError, match="launch_dir"):
        launch.run(write_json, num_processes=2, path="x", obj={})
    with pytest.raises(ValueError, match="only top-level functions of the lmlab package"):
        launch.run(lambda: None, num_processes=2, launch_dir=tmp_path)


def test_a_preempted_launch_exits_with_the_processes_code(tmp_path, monkeypatch):
    def preempted(cmd, env):
        launch_dir = Path(cmd[-1]).parent
        (launch_dir / "write_json.rank0.exit").write_text("143\n")
        (launch_dir / "write_json.rank1.exit").write_text("143\n")
        return 1, None  # accelerate itself reports a plain failure

    monkeypatch.setattr(launch, "_run_forwarding_signals", preempted)
    with pytest.raises(SystemExit) as err:
        launch.run(write_json, num_processes=2, launch_dir=tmp_path, path="x", obj={})
    assert err.value.code == 143

    monkeypatch.setattr(launch, "_run_forwarding_signals", lambda cmd, env: (1, None))
    with pytest.raises(SystemExit) as err:  # the stale exit files of the last launch are gone
        launch.run(write_json, num_processes=2, launch_dir=tmp_path, path="x", obj={})
    assert err.value.code == 1


def test_the_entry_point_refuses_functions_outside_lmlab(tmp_path):
    kwargs = tmp_path / "k.json"
    kwargs.write_text(json.dumps({"command": "touch should-not-exist"}))
    for spec in ("os:system", "lmlabx.io:write_json", "lmlab.core.io", "lmlab.core.io:write_json.__globals__"):
        with pytest.raises(ValueError, match="lmlab"):
            launch.main([spec, str(kwargs)])
    assert launch.resolve("lmlab.core.io:write_json") is write_json


def test_processes_for_is_one_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert launch.processes_for(4) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert launch.processes_for(4) == 2
    assert launch.processes_for(1) == 1


def test_a_real_accelerate_launch_runs_an_lmlab_function(tmp_path):
    out = tmp_path / "written.json"
    kwargs_file, result_file, _ = launch.launch_files(tmp_path, "lmlab.core.io:write_json")
    kwargs_file.write_text(json.dumps({"path": str(out), "obj": {"hello": [1, 2.5]}}))
    cmd = launch.command(1, "lmlab.core.io:write_json", kwargs_file)
    assert "--multi_gpu" not in cmd
    proc = subprocess.run(cmd, env=launch.launch_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert read_json(out) == {"hello": [1, 2.5]}
    assert json.loads(result_file.read_text()) is None  # write_json returns None

    # A failing launched function records its exit code beside the kwargs file.
    kwargs_file, _, pattern = launch.launch_files(tmp_path, "lmlab.core.io:read_json")
    kwargs_file.write_text(json.dumps({"path": str(tmp_path / "missing.json")}))
    proc = subprocess.run(
        launch.command(1, "lmlab.core.io:read_json", kwargs_file),
        env=launch.launch_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert [p.read_text().strip() for p in tmp_path.glob(pattern)] == ["1"]
