"""Shared fixtures: the repository root, a temporary copy of the workflow to run in, and the
test workflow's finished run (shared by the local and the SLURM end-to-end tests)."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
# What a workflow run needs from the checkout (results/ and caches stay behind).
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "data", "report", "envs", "slurm")
# Where config/test.yaml's run writes: results/<run_name>/.
TEST_RESULTS = "results/test-tiny"
TEST_CONFIG = ["--configfile", "config/test.yaml"]


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


def git_workflow(dest):
    """A copy of the workflow in a git checkout, so provenance records carry a commit like a
    real run would."""
    workdir = copy_workflow(dest)
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run(["git", "add", "-A"], cwd=workdir, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "wf"], cwd=workdir, check=True)
    return workdir


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The whole test workflow (config/test.yaml, two seeds), run once per test session from
    empty results: (workdir, seconds)."""
    workdir = git_workflow(tmp_path_factory.mktemp("e2e"))
    start = time.time()
    run_snakemake(workdir, *TEST_CONFIG)
    return workdir, time.time() - start
