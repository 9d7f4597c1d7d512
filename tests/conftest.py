"""Shared fixtures: the repository root, and a temporary copy of the workflow to run in."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
# What a workflow run needs from the checkout (results/ and caches stay behind).
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "data", "report", "envs", "slurm")
# Where config/test.yaml's run writes: results/<run_name>/.
TEST_RESULTS = "results/test-tiny"


def copy_workflow(dest):
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", ".work"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def run_snakemake(workdir, *args, timeout=1800, check=True):
    cmd = [SNAKEMAKE, *args, "--cores", "2", "--quiet", "rules"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture
def workflow_copy(tmp_path):
    return copy_workflow(tmp_path / "wf")
