"""End to end: the whole workflow on config/test.yaml in a temporary copy of the repository."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import SNAKEMAKE, TEST_CONFIG, TEST_RESULTS, run_snakemake

pytestmark = pytest.mark.slow


def test_paper_and_provenance_are_produced(finished_run):
    workdir, seconds = finished_run
    paper = (workdir / f"{TEST_RESULTS}/paper/paper.html").read_text(encoding="utf-8")
    assert "<h2>Setup</h2>" in paper and "Appendix: provenance" in paper
    manifest = json.loads((workdir / f"{TEST_RESULTS}/data/manifest.json").read_text())
    # The data section's numbers come from the manifest.
    assert f"{manifest['sft_train']['rows']:,}" in paper
    provenance = json.loads((workdir / f"{TEST_RESULTS}/paper/provenance.json").read_text())
    assert "figures/data_counts.png" in provenance["artifacts"]
    assert provenance["artifacts"]["figures/data_counts.png"]["rule"] == "data_validate"
    for record in provenance["records"].values():
        assert record["git"]["commit"] and record["config_sha256"] and record["inputs"] is not None
    # A guard against a runaway DAG, not a timing test (measured times are in the README).
    assert seconds < 1800, f"the test workflow took {seconds:.0f} s (guard 1800 s)"


def test_each_training_seed_trains_and_evaluates_its_own_models(finished_run):
    """config/test.yaml lists seeds 7 and 8: every model is trained per seed (different weights
    from the same data), evaluated on the same test items, and the paper lines up each primary
    comparison over both seeds."""
    workdir, _ = finished_run
    root = workdir / TEST_RESULTS
    records = {seed: json.loads((root / f"provenance/sft_train-chat-seed{seed}.json").read_text()) for seed in (7, 8)}
    assert [records[s]["seed"] for s in (7, 8)] == [7, 8]
    weights = {s: (root / f"seed-{s}/models/sft/chat/adapter_model.safetensors").read_bytes() for s in (7, 8)}
    assert weights[7] != weights[8]
    for s in (7, 8):
        dpo = json.loads((root / f"provenance/alignment_dpo-beta0.1-seed{s}.json").read_text())
        assert f"{TEST_RESULTS}/seed-{s}/models/sft/chat" in dpo["inputs"]
        assert (root / f"seed-{s}/agents/summary.json").exists()
    items = {s: json.loads((root / f"provenance/evaluation_summary-seed{s}.json").read_text())["inputs"]
             for s in (7, 8)}
    test_items = f"{TEST_RESULTS}/evaluation/test_items.jsonl"
    assert items[7][test_items] == items[8][test_items]
    seeds = json.loads((root / "paper/seeds/summary.json").read_text())
    assert seeds["seeds"] == ["7", "8"] and seeds["comparisons"]
    for comparison in seeds["comparisons"]:
        assert [r["seed"] for r in comparison["per_seed"]] == ["7", "8"]
        assert comparison["spread"]["n_seeds"] == sum(r["estimate"] is not None for r in comparison["per_seed"])
    paper = (root / "paper/paper.html").read_text(encoding="utf-8")
    assert "<h2>Training seeds</h2>" in paper and "once for each of 2 training seeds (7, 8)" in " ".join(paper.split())


def test_every_rule_wrote_log_and_benchmark(finished_run):
    workdir, _ = finished_run
    for rule in ("data_validate", "models_prepare-tiny-random", "paper_figures", "paper"):
        assert (workdir / f"{TEST_RESULTS}/logs/{rule}.log").exists(), rule
        assert (workdir / f"{TEST_RESULTS}/benchmarks/{rule}.tsv").exists(), rule


def test_template_change_reruns_only_the_paper(finished_run):
    workdir, _ = finished_run
    template = workdir / "report/sections/setup.html.j2"
    template.write_text(template.read_text() + "\n")
    proc = run_snakemake(workdir, "-n", *TEST_CONFIG)
    assert "paper" in proc.stdout
    for rule in ("data_validate", "models_prepare", "paper_figures"):
        assert rule not in proc.stdout, proc.stdout


def test_verify_passes_then_detects_tampering(finished_run):
    workdir, _ = finished_run
    run_snakemake(workdir, "paper_verify", *TEST_CONFIG)
    figure = workdir / f"{TEST_RESULTS}/paper/tables/data_files.tsv"
    original = figure.read_bytes()
    figure.write_bytes(original + b"tampered\n")
    try:
        proc = run_snakemake(workdir, "paper_verify", *TEST_CONFIG, check=False)
        assert proc.returncode != 0
        assert "data_files.tsv: recorded " in proc.stdout + proc.stderr
    finally:
        figure.write_bytes(original)
    # One byte inside an adapter folder (of the second training seed, which the paper's
    # sections do not show): the reviewer's command names the folder and its rule.
    config = workdir / f"{TEST_RESULTS}/seed-8/models/sft/chat/adapter_config.json"
    original = config.read_bytes()
    config.write_bytes(original.replace(b'"r": ', b'"r":  '))
    try:
        env = {**os.environ, "PYTHONPATH": str(workdir / "scripts")}
        proc = subprocess.run([sys.executable, "-m", "lmlab.paper.verify", f"{TEST_RESULTS}/paper/provenance.json"], cwd=workdir, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 1, proc.stdout
        assert f"{TEST_RESULTS}/seed-8/models/sft/chat: recorded " in proc.stdout and "written by rule sft_train" in proc.stdout
        assert proc.stdout.strip().splitlines()[-1].startswith("verify: FAILED")
    finally:
        config.write_bytes(original)
    proc = subprocess.run([sys.executable, "-m", "lmlab.paper.verify", f"{TEST_RESULTS}/paper/provenance.json"], cwd=workdir, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "verify: OK" in proc.stdout, proc.stdout


def test_bad_input_stops_with_one_line_and_no_output(workflow_copy):
    raw = workflow_copy / "data/raw/sft_test.jsonl"
    lines = raw.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4][: len(lines[4]) // 2]  # a truncated JSON line
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run_snakemake(workflow_copy, *TEST_CONFIG, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "InputError: data/raw/sft_test.jsonl:5: json: malformed JSON" in output
    assert "Traceback" not in output
    assert not (workflow_copy / TEST_RESULTS / "data").exists() or not any((workflow_copy / TEST_RESULTS / "data").iterdir())
    assert not (workflow_copy / TEST_RESULTS / "models").exists()


def test_invalid_config_is_one_line_before_any_job(workflow_copy):
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "-n", *TEST_CONFIG, "--config", "seed=notanumber"],
        cwd=workflow_copy,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "config: seed: 'notanumber' is not of type 'integer'" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists()


def test_snakemake_report_is_built(finished_run):
    workdir, _ = finished_run
    run_snakemake(workdir, "--report", f"{TEST_RESULTS}/paper/snakemake-report.zip", *TEST_CONFIG)
    assert (workdir / f"{TEST_RESULTS}/paper/snakemake-report.zip").stat().st_size > 10_000


def test_rendered_paper_passes_the_browser_check(finished_run, tmp_path):
    from test_browser import check_page

    workdir, _ = finished_run
    errors, broken, overflowing, page_wider = check_page(workdir / f"{TEST_RESULTS}/paper/paper.html", tmp_path / "paper.png")
    assert errors == [] and broken == [] and overflowing == 0 and not page_wider, (errors, broken, overflowing)


def test_paper_outputs_regenerate_byte_identical(finished_run, tmp_path):
    """The paper-level outputs (seed summary, figures, tables) written a second time from the
    same results are byte-identical; that the results themselves are, from empty results on
    another executor, is tests/test_workflow_slurm.py::test_the_cluster_run_reproduces_the_local_run."""
    from lmlab.paper.compare import compare_runs, report

    first, _ = finished_run
    second = tmp_path / "copy"
    shutil.copytree(first, second, symlinks=True)
    shutil.rmtree(second / TEST_RESULTS / "paper")
    run_snakemake(second, *TEST_CONFIG)
    assert (second / TEST_RESULTS / "paper/figures").is_dir()
    # Only the paper's rules ran again: a training job's benchmark file is the copied one.
    bench = f"{TEST_RESULTS}/benchmarks/sft_train-chat-seed7.tsv"
    assert (second / bench).stat().st_mtime == (first / bench).stat().st_mtime
    result = compare_runs(first / TEST_RESULTS, second / TEST_RESULTS)
    text = report(result, "first", "second")
    assert result["differ"] == [] and result["only_a"] == [] and result["only_b"] == [], text
    assert result["same"] > 100, text  # adapters, generations, metrics, stats, tables, figures


def test_a_second_config_on_a_second_architecture_leaves_the_first_run_in_place(finished_run):
    """Another config (its own run_name, another seed, a GPT-NeoX base instead of a Llama)
    runs the whole workflow under its own root: the paper and its provenance come out, LoRA
    goes on GPT-NeoX's own module names, the first run still verifies, and the comparison
    step lists what differs."""
    workdir, _ = finished_run
    other = "results/test-tiny-gpt-neox"
    env = {**os.environ, "PYTHONPATH": str(workdir / "scripts")}
    start = time.time()
    run_snakemake(workdir, "--configfile", "config/test.yaml", "config/test_gpt_neox.yaml")
    print(f"GPT-NeoX test workflow: {time.time() - start:.0f} s")
    base = json.loads((workdir / other / "models/base/tiny-gpt-neox/base_model.json").read_text())
    assert base["model_type"] == "gpt_neox"
    adapter = json.loads((workdir / other / "seed-8/models/sft/chat/adapter_config.json").read_text())
    assert "query_key_value" in adapter["target_modules"] and "q_proj" not in adapter["target_modules"]
    reward = json.loads((workdir / other / "seed-8/models/reward/chat/adapter_config.json").read_text())
    assert reward["target_modules"] == ["query_key_value"]
    assert "<h2>Setup</h2>" in (workdir / other / "paper/paper.html").read_text(encoding="utf-8")
    for root in (TEST_RESULTS, other):
        proc = subprocess.run([sys.executable, "-m", "lmlab.paper.verify", f"{root}/paper/provenance.json"],
                              cwd=workdir, env=env, capture_output=True, text=True)
        assert proc.returncode == 0 and "verify: OK" in proc.stdout, proc.stdout
    proc = subprocess.run([sys.executable, "-m", "lmlab.paper.compare", TEST_RESULTS, other], cwd=workdir, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stdout.splitlines()
    # Numbers of the context stage differ with the seed (tokenizers, tiny LMs); the first run's
    # second seed is only in the first run.
    assert any(line.startswith("context/") and " -> " in line for line in lines), proc.stdout[-3000:]
    assert f"seed-7/evaluation/summary.json: only in {TEST_RESULTS}" in lines, proc.stdout[-3000:]
    assert lines[-1].startswith(f"compare: {TEST_RESULTS} vs {other}: ")
