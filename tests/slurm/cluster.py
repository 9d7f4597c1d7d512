"""The local SLURM test cluster (tests/slurm/cluster.sh) as pytest helpers.

Test modules that need a real SLURM import the fixture and the helpers:

    from slurm.cluster import slurm_cluster, run_snakemake, sacct_jobs, write_profile  # noqa: F401

(`tests/` is on sys.path under pytest's default import mode, so `slurm.cluster` is this
file.) The fixture is module-scoped: each module gets a freshly wiped cluster (about
3 s to start; 12-16 s the first time on a machine, when MariaDB is initialised) and
stops it afterwards, so modules cannot see each other's jobs (job ids restart at 1).
Snakemake runs against it take 15-45 s even for trivial jobs: the plugin's sacct polling
backs off by 10 s per check, and shutdown waits out the current back-off.

Skips only where the cluster cannot be had: not root, or no apt to install SLURM. As
root with apt, a missing package or a cluster that does not come up is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
SYSTEM_DEPS_SH = REPO / "tests" / "system_deps.sh"
PROFILE = REPO / "slurm" / "config.yaml"

# Programs the cluster (cluster.sh) and the Snakemake SLURM plugin call.
NEEDED = (
    "munged",
    "munge",
    "mariadbd",
    "mariadb-install-db",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "sacct",
    "sacctmgr",
    "sinfo",
    "scontrol",
    "srun",
)
ACCOUNT = "lmlab"


def missing_programs() -> list[str]:
    # The daemons are in /usr/sbin, which a non-login PATH may lack (cluster.sh adds it).
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [p for p in NEEDED if shutil.which(p, path=path) is None]


def ensure_slurm_installed() -> None:
    """Run tests/system_deps.sh (about 1 s once installed), then skip or fail loudly."""
    if missing_programs():
        proc = subprocess.run(
            ["bash", str(SYSTEM_DEPS_SH)], capture_output=True, text=True
        )
        sys.stderr.write(proc.stdout + proc.stderr)
    missing = missing_programs()
    if not missing:
        return
    root = os.geteuid() == 0
    has_apt = shutil.which("apt-get") is not None
    reason = (
        f"SLURM not installable here: missing {', '.join(missing)} "
        f"(root={root}, apt-get={'yes' if has_apt else 'no'}); "
        "run `bash tests/system_deps.sh` as root on Debian/Ubuntu"
    )
    if root and has_apt:
        pytest.fail(reason + " -- it was run and did not install them", pytrace=False)
    pytest.skip(reason)


@dataclass
class Cluster:
    state_dir: Path
    env: dict  # os.environ plus SLURM_CONF and the venv's bin/ first on PATH

    def sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(CLUSTER_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def start_cluster(state_dir: Path | None = None) -> Cluster:
    ensure_slurm_installed()
    env = dict(os.environ)
    if state_dir is not None:
        env["LMLAB_SLURM_DIR"] = str(state_dir)
    state = Path(env.get("LMLAB_SLURM_DIR", "/tmp/lmlab-slurm"))
    env["SLURM_CONF"] = str(state / "etc" / "slurm.conf")
    # Jobs run `python -m snakemake` and srun through the submitting environment
    # (sbatch --export=ALL): put this interpreter's bin/ first.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    cluster = Cluster(state, env)
    t0 = time.monotonic()
    proc = cluster.sh("start", timeout=180)
    if proc.returncode != 0:
        cluster.sh("stop")
        pytest.fail(
            f"tests/slurm/cluster.sh start failed (rc {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    sys.stderr.write(f"SLURM test cluster up in {time.monotonic() - t0:.1f} s\n")
    return cluster


@pytest.fixture(scope="module")
def slurm_cluster():
    cluster = start_cluster()
    yield cluster
    proc = cluster.sh("stop")
    assert (
        proc.returncode == 0
    ), f"cluster.sh stop failed:\n{proc.stdout}\n{proc.stderr}"


def write_profile(dest: Path, **overrides) -> Path:
    """Copy of the repo's slurm/ profile for the local cluster; returns its folder.

    Changes to the real profile, and why:
    - no `software-deployment-method: conda`: there is no conda/mamba on these machines
      and conda channels are out of reach, so jobs run in this venv instead (Snakemake 9
      has no CLI value that turns a profile's deployment method off);
    - `slurm_account: lmlab` added to default-resources (a CLI --default-resources would
      replace the profile's whole mapping, partition and memory included), and mem_mb
      1000 so that jobs share the small test node;
    - first sacct status check after 1 s instead of 20, and a short latency-wait:
      the file system is local;
    - logs of successful jobs kept, for post-mortems.
    `overrides` set or replace top-level keys (use underscores for dashes).
    """
    profile = yaml.safe_load(PROFILE.read_text())
    profile.pop("software-deployment-method", None)
    profile["default-resources"] = {
        **profile.get("default-resources", {}),
        "slurm_account": ACCOUNT,
        "mem_mb": 1000,
    }
    profile["slurm-init-seconds-before-status-checks"] = 1
    profile["latency-wait"] = 5
    profile["slurm-keep-successful-logs"] = True
    profile.update({k.replace("_", "-"): v for k, v in overrides.items()})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def run_snakemake(
    cluster: Cluster, workdir: Path, profile: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m snakemake --profile PROFILE ARGS` in workdir against the cluster.

    The timeout guards against the plugin's known failure mode (waiting forever on a
    broken sacct); subprocess.run kills Snakemake with SIGKILL when it expires.
    """
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(profile), *args]
    try:
        return subprocess.run(
            cmd,
            cwd=workdir,
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        # TimeoutExpired carries bytes even with text=True.
        out, err = (
            x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
            for x in (e.stdout, e.stderr)
        )
        pytest.fail(
            f"snakemake did not finish in {timeout} s: {' '.join(cmd)}\n"
            f"{out[-3000:]}\n{err[-3000:]}",
            pytrace=False,
        )


def submitted_jobids(output: str) -> list[str]:
    """SLURM job ids from Snakemake's 'submitted with SLURM jobid N' lines."""
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def sacct_jobs(
    cluster: Cluster, jobids: list[str], settle_s: float = 10
) -> dict[str, list[dict]]:
    """Allocation records by rule name: {rule: [{jobid, partition, alloc_tres, state}, ...]}
    (a list: a retried rule has one record per attempt).

    The plugin puts `rule_<name>[_wildcards_<w>]` in the job comment
    (AccountingStoreFlags=job_comment makes sacct show it). Waits up to settle_s for
    every job to reach a final state in the accounting database.
    """
    assert jobids, "no SLURM job ids to look up"
    fields = "JobID,Comment,Partition,AllocTRES,State"
    deadline = time.monotonic() + settle_s
    while True:
        out = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(jobids), "-o", fields],
            env=cluster.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        final = all(
            r[4].split()[0] not in ("PENDING", "RUNNING", "COMPLETING") for r in rows
        )
        if (len(rows) == len(jobids) and final) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    sys.stderr.write(f"sacct -n -P -X -o {fields}:\n{out}")
    jobs = {}
    for jobid, comment, partition, tres, state in rows:
        rule = re.sub(r"^rule_", "", comment).split("_wildcards_")[0]
        jobs.setdefault(rule, []).append(
            {"jobid": jobid, "partition": partition, "alloc_tres": tres, "state": state}
        )
    return jobs
