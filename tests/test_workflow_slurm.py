"""The test workflow through `snakemake --profile slurm` on a real local SLURM cluster:
every output is produced, GPU rules are submitted with a GPU and CPU rules without."""

import re
import subprocess

import pytest

from conftest import ROOT, TEST_RESULTS, copy_workflow
from slurm.cluster import run_snakemake, sacct_jobs, slurm_cluster, submitted_jobids, write_profile  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# Site settings for the one-node test cluster (2 CPUs, ~20 GB, two fake GPUs); on a real
# site these live in the config's `hpc` section (config/hpc.yaml is the example).
# One training seed: the SLURM test checks where each rule runs, not what a second seed adds.
TEST_SITE = """seeds: [7]
hpc:
  account: lmlab
  cpu_partition: cpu
  gpu_partition: gpu
  cpus_per_gpu: 1
  cpu_threads: 1
  mem_mb: 1000
  gpu_mem_mb: 1000
  runtime: 30
  gpu_runtime: 30
"""


def gpu_rules():
    """Rules whose resources come from gpu_resources(...) in rules/*.smk."""
    names = set()
    for path in (ROOT / "rules").glob("*.smk"):
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", path.read_text(), re.M | re.S):
            if "gpu_resources(" in match.group(2):
                names.add(match.group(1))
    return names


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):  # noqa: F811
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-wf"))
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    # The profile as typed by a user: `--profile slurm` from the repository root finds ./slurm/.
    write_profile(workdir / "slurm", retries=0)
    (workdir / "site.yaml").write_text(TEST_SITE)
    proc = run_snakemake(slurm_cluster, workdir, "slurm", "--configfile", "config/test.yaml", "site.yaml", timeout=2700)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    return workdir, sacct_jobs(slurm_cluster, submitted_jobids(log))


def test_every_output_is_produced(slurm_run):
    workdir, _ = slurm_run
    assert (workdir / f"{TEST_RESULTS}/paper/paper.html").stat().st_size > 1000
    assert (workdir / f"{TEST_RESULTS}/paper/provenance.json").exists()
    assert (workdir / f"{TEST_RESULTS}/data/manifest.json").exists()


def test_gpu_rules_get_a_gpu_and_cpu_rules_do_not(slurm_run):
    _, jobs = slurm_run
    expected_gpu = gpu_rules()
    assert jobs, "no SLURM jobs were recorded"
    for comment, records in jobs.items():
        rule = re.sub(r"^rule_", "", comment).split("_wildcards_")[0]
        for record in records:
            assert record["state"].startswith("COMPLETED"), (rule, record)
            has_gpu = "gres/gpu=" in record["alloc_tres"]
            wants_gpu = rule in expected_gpu
            assert has_gpu == wants_gpu, f"rule {rule}: alloc {record['alloc_tres']} on {record['partition']}"
            assert record["partition"] == ("gpu" if wants_gpu else "cpu"), (rule, record)
