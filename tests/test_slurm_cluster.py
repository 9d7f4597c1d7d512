"""Smoke test of the local SLURM cluster (tests/slurm/cluster.sh) with the repo's profile.

One run of a throwaway Snakefile through the SLURM executor plugin (with --keep-going):
the GPU rule must be allocated one (fake) GPU on the `gpu` partition, the CPU rule none
on `cpu`, both COMPLETED in accounting; a failing rule must make the run fail, not hang
(the plugin's known failure mode when sacct does not answer).
"""

import textwrap

import pytest

from slurm.cluster import (
    run_snakemake,
    sacct_jobs,
    slurm_cluster,
    submitted_jobids,
    write_profile,
)  # noqa: F401

pytestmark = pytest.mark.slurm

SNAKEFILE = textwrap.dedent("""
    rule all:
        input: "gpu.txt", "cpu.txt", "boom.txt"

    rule on_gpu:
        output: "gpu.txt"
        resources: gpu=1, slurm_partition="gpu"
        shell: "echo $SLURM_JOB_PARTITION $CUDA_VISIBLE_DEVICES > {output}"

    rule on_cpu:
        output: "cpu.txt"
        shell: "echo $SLURM_JOB_PARTITION ${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

    rule boom:
        output: "boom.txt"
        shell: "exit 3"
    """)


@pytest.fixture(scope="module")
def smoke_run(slurm_cluster, tmp_path_factory):
    """One Snakemake run (all three rules are submitted at once); its log and sacct rows."""
    workdir = tmp_path_factory.mktemp("slurm-smoke")
    (workdir / "Snakefile").write_text(SNAKEFILE)
    # retries=0: the failing rule is not resubmitted (the profile's retries: 1 would
    # double the run time for nothing here).
    profile = write_profile(workdir / "profile", retries=0)
    proc = run_snakemake(slurm_cluster, workdir, profile, "--keep-going", timeout=400)
    log = proc.stdout + proc.stderr
    jobids = submitted_jobids(log)
    assert len(jobids) == 3, log[-4000:]
    return workdir, proc, log, sacct_jobs(slurm_cluster, jobids)


def test_gpu_and_cpu_rules_land_on_their_partitions(smoke_run):
    workdir, _, log, jobs = smoke_run
    (gpu,) = jobs["on_gpu"]
    (cpu,) = jobs["on_cpu"]
    assert gpu["state"] == cpu["state"] == "COMPLETED", (jobs, log[-4000:])
    assert gpu["partition"] == "gpu" and cpu["partition"] == "cpu", jobs
    assert "gres/gpu=1" in gpu["alloc_tres"].split(","), jobs
    assert "gres/gpu" not in cpu["alloc_tres"], jobs
    # Inside the job SLURM hands out the fake GPU the way it would a real one.
    assert (workdir / "gpu.txt").read_text().split() == ["gpu", "0"]
    assert (workdir / "cpu.txt").read_text().split() == ["cpu", "none"]


def test_failing_job_fails_the_run_instead_of_hanging(smoke_run):
    workdir, proc, log, jobs = smoke_run
    assert proc.returncode != 0, log[-4000:]
    assert not (workdir / "boom.txt").exists()
    (boom,) = jobs["boom"]
    assert boom["state"] == "FAILED", boom
    assert "Error in rule boom" in log
