"""Timings apart from results (lmlab.core.timing) and two runs side by side (lmlab.paper.compare)."""

import json

from lmlab.core.io import read_json, sha256_tree, write_json
from lmlab.core.timing import is_timing_key, merge_timing, read_results, split_timing, strip_timing, write_results
from lmlab.paper.compare import compare_runs, is_timing, report


def test_timing_keys():
    for key in ("wall_s", "train_s", "generate_s", "tokens_per_s", "achieved_flops_per_s", "mean_latency_s",
                "latency_s_per_item", "generate_s_total", "load_average", "achieved_over_probe", "timing",
                "achieved_dense_over_probe", "achieved_flops_per_s_dense", "tokens_per_s_wall", "steps_per_s", "train_seconds_total",
                "peak_memory_mib", "seconds"):
        assert is_timing_key(key), key
    for key in ("steps", "tokens", "n_items", "prompts_per_step", "success", "estimate", "n_forward_params",
                "status", "loss", "tokens_out"):
        assert not is_timing_key(key), key


def test_split_and_merge_are_inverse(tmp_path):
    data = {"templates": {"chat": {"steps": 4, "wall_s": 1.5, "tokens": 90, "tokens_per_s": 60.0}},
            "total_wall_s": 1.5, "timing": {"note": "wall clock"}, "rows": [{"latency_s": 0.1, "id": "a"}]}
    results, timing = split_timing(data)
    assert results == {"templates": {"chat": {"steps": 4, "tokens": 90}}, "rows": [{"latency_s": 0.1, "id": "a"}]}
    assert timing == {"templates": {"chat": {"wall_s": 1.5, "tokens_per_s": 60.0}}, "total_wall_s": 1.5,
                      "timing": {"note": "wall clock"}}
    assert merge_timing(results, timing) == data
    # Lists of records (trace rows) lose their timing fields at any depth.
    assert strip_timing([{"id": "a", "latency_s": 0.3, "steps": [{"n": 1, "latency_s": 0.1}]}]) == [
        {"id": "a", "steps": [{"n": 1}]}]
    write_results(tmp_path / "s.json", data, tmp_path / "timing" / "s.json")
    assert "wall_s" not in (tmp_path / "s.json").read_text()
    assert read_results(tmp_path / "s.json", tmp_path / "timing" / "s.json") == json.loads(json.dumps(data))


def test_timing_paths():
    for rel in ("logs/x.log", "benchmarks/sft_train-chat.tsv", "sft/timing/train-chat.json", "provenance/paper.json",
                "paper/cost/summary.json", "paper/timing/tables/cost_rules.tsv", "paper/timing", "paper/paper.html"):
        assert is_timing(rel), rel
    for rel in ("sft/summary.json", "models/sft/chat", "evaluation/generations/sft/structured/ctx512.jsonl",
                "paper/tables", "paper/figures"):
        assert not is_timing(rel), rel


def _run(root, numbers, wall_s):
    """A two-rule run: a results file, a timing file and a folder, with their records."""
    write_json(root / "stage" / "summary.json", numbers)
    write_json(root / "stage" / "timing" / "summary.json", {"wall_s": wall_s})
    (root / "models" / "m").mkdir(parents=True)
    (root / "models" / "m" / "weights.bin").write_bytes(b"\x00\x01")
    outputs = [root / "stage" / "summary.json", root / "stage" / "timing" / "summary.json", root / "models" / "m"]
    record = {"rule": "stage", "inputs": {}, "outputs": {str(p): sha256_tree(p) for p in outputs},
              "results_root": str(root)}
    write_json(root / "provenance" / "stage.json", record)


def test_compare_lists_every_differing_number_and_ignores_timings(tmp_path):
    a, b = tmp_path / "results" / "a", tmp_path / "results" / "b"
    _run(a, {"acc": {"estimate": 0.5, "n": 20}, "name": "x"}, 1.0)
    _run(b, {"acc": {"estimate": 0.55, "n": 20}, "name": "x"}, 2.0)
    result = compare_runs(a, b)
    assert result["differ"] == ["stage/summary.json: acc.estimate: 0.5 -> 0.55"]
    assert result["timings"] == ["stage/timing/summary.json"] and result["same"] == 1  # the model folder
    text = report(result, "a", "b")
    assert text.splitlines()[-1] == ("compare: a vs b: 1 differences, 1 outputs identical; "
                                     "1 timing files differ (wall clock, not compared)")
    # The same run twice (timings apart) compares clean.
    c = tmp_path / "copy" / "results" / "a"
    _run(c, {"acc": {"estimate": 0.5, "n": 20}, "name": "x"}, 3.0)
    assert compare_runs(a, c)["differ"] == [] and read_json(c / "provenance" / "stage.json")["results_root"] == str(c)
