"""The test workflow through `snakemake --profile slurm` on a real local SLURM cluster:
every output is produced, GPU rules are submitted with a GPU, CPU rules without, the
bookkeeping rules run on the submitting host, and every result equals the local run's,
byte for byte."""

import re

import pytest

from conftest import ROOT, TEST_RESULTS, git_workflow
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


def local_rules():
    """The rules named in the Snakefile's `localrules:` directive."""
    match = re.search(r"^localrules:\n((?:    \w+,?\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    return set(re.findall(r"\w+", match.group(1))) if match else set()


def rule_of(comment):
    """The rule of a submitted job: the plugin's job comment is rule_<name>[_wildcards_<w>]."""
    return re.sub(r"^rule_", "", comment).split("_wildcards_")[0]


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
    workdir = git_workflow(tmp_path_factory.mktemp("slurm-wf"))
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
        rule = rule_of(comment)
        for record in records:
            assert record["state"].startswith("COMPLETED"), (rule, record)
            has_gpu = "gres/gpu=" in record["alloc_tres"]
            wants_gpu = rule in expected_gpu
            assert has_gpu == wants_gpu, f"rule {rule}: alloc {record['alloc_tres']} on {record['partition']}"
            assert record["partition"] == ("gpu" if wants_gpu else "cpu"), (rule, record)
    submitted = {rule_of(comment) for comment in jobs}
    assert expected_gpu <= submitted, expected_gpu - submitted


def test_bookkeeping_rules_run_on_the_submitting_host(slurm_run):
    """`localrules:` (tables, figures, summaries, the paper) run where Snakemake runs, not
    through sbatch: seconds of work each that would otherwise wait in the queue."""
    workdir, jobs = slurm_run
    local = local_rules()
    assert {"paper", "paper_figures", "evaluation_score", "sft_summary"} <= local
    submitted = {rule_of(comment) for comment in jobs}
    ran = {p.name.split("-")[0].removesuffix(".tsv") for p in (workdir / f"{TEST_RESULTS}/benchmarks").iterdir()}
    assert local - {"all"} - {"evaluation_human_agreement", "paper_verify"} <= ran, local - ran
    assert submitted.isdisjoint(local) and submitted, submitted & local


def test_the_cluster_run_reproduces_the_local_run(slurm_run, finished_run):
    """The SLURM run (training seed 7, from empty results in a fresh copy) against the local
    run of the same test config (seeds 7 and 8): every output of the cluster run that is not
    a timing has the same sha256 as the local one. Only the paper's aggregates over the
    seeds list (one seed here, two there) may differ, and only seed 8 is local alone."""
    from lmlab.paper.compare import compare_runs, report

    cluster, _ = slurm_run
    local, _ = finished_run
    result = compare_runs(local / TEST_RESULTS, cluster / TEST_RESULTS)
    text = report(result, "local", "cluster")
    over_seeds = ("paper/seeds/", "paper/figures", "paper/tables")
    assert all(d.startswith(over_seeds) for d in result["differ"]), text
    assert result["only_b"] == [] and all(p.startswith("seed-8/") for p in result["only_a"]), text
    assert result["same"] > 100, text  # data, context, adapters, generations, metrics, stats, agents
