"""Scoring of cells, the statistics on them (intervals, McNemar, Holm) and the summary built on top."""

import json

import pytest

from lmlab.core.io import read_json, read_jsonl, read_tsv, write_jsonl
from lmlab.core.stats import holm, mcnemar_exact
from lmlab.evaluation.design import cell_id, write_matrix
from lmlab.evaluation.score import score_cell
from lmlab.evaluation.stats import evaluation_stats
from lmlab.evaluation.summary import evaluation_summary


def gen_row(i, task, prediction, model="base", **extra):
    gold = {"arithmetic": "12", "sentiment": "positive"}[task]
    meta = {"answer": "12", "should_refuse": False} if task == "arithmetic" else {"label": "positive", "should_refuse": False}
    return {
        "id": f"{task}-{i:02d}",
        "task": task,
        "lang": "en",
        "meta": meta,
        "instruction": "Answer.",
        "input": "",
        "prompt": "Answer.\nAnswer: ",
        "prompt_tokens": 5,
        "prediction": prediction,
        "gold": gold,
        "tokens_in": 5,
        "tokens_out": len(prediction.split()) + 1,
        "truncated": False,
        "stopped_at_eos": True,
        "latency_s": 0.01 * (i + 1),
        "decoding": {"max_new_tokens": 8},
        "model": model,
        **extra,
    }


def make_cell_files(tmp_path, cell, correct_pattern):
    """Generation + metrics files of one cell where item k is correct iff correct_pattern[k]."""
    rows = []
    for k, ok in enumerate(correct_pattern):
        task = "arithmetic" if k % 2 == 0 else "sentiment"
        if task == "arithmetic":
            pred = "12" if ok else "13"
        else:
            pred = "positive" if ok else "negative"
        rows.append(gen_row(k, task, pred, model=cell["model"]))
    gen = tmp_path / "generations" / f"{cell_id(cell)}.jsonl"
    write_jsonl(gen, rows)
    met = tmp_path / "metrics" / f"{cell_id(cell)}.jsonl"
    score_cell(gen, met, met.with_suffix(".tsv"), rouge_threshold=0.4)
    return gen, met


PATTERNS = {
    "base": [1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0],
    "sft": [1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1],
    "dpo": [1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1],
}


def build_cells(tmp_path):
    cells = [{"model": m, "prompt": "structured", "context": 512} for m in ("base", "sft", "dpo")]
    paths = [make_cell_files(tmp_path, c, PATTERNS[c["model"]])[1] for c in cells]
    return cells, paths


def test_scored_rows_follow_the_hand_made_pattern(tmp_path):
    cells, paths = build_cells(tmp_path)
    scored = read_jsonl(paths[0])
    assert [int(r["correct"]) for r in scored] == PATTERNS["base"]
    aggregate = {r["task"]: r for r in read_tsv(paths[0].with_suffix(".tsv"))}
    assert float(aggregate["all"]["correct"]) == pytest.approx(sum(PATTERNS["base"]) / 16, abs=1e-4)
    assert int(aggregate["arithmetic"]["n"]) == 8


def test_comparisons_match_direct_mcnemar_and_holm(tmp_path):
    cells, paths = build_cells(tmp_path)
    out = tmp_path / "stats"
    result = evaluation_stats(cells, paths, {}, [], out, design="ofat", reference=cells[1], n_resamples=200,
                                 confidence=0.95, seed=0)
    overall = [r for r in result["comparisons"] if r["task"] == "all"]
    assert len(overall) == 3  # sft-base, dpo-base, dpo-sft
    for row in overall:
        a, b = PATTERNS[row["a"].split("/")[0]], PATTERNS[row["b"].split("/")[0]]
        n10 = sum(x and not y for x, y in zip(a, b))
        n01 = sum(y and not x for x, y in zip(a, b))
        assert (row["n10"], row["n01"], row["n"]) == (n10, n01, 16)
        assert row["p_value"] == pytest.approx(mcnemar_exact(a, b, mid_p=True)["p_value"])
        assert row["estimate"] == pytest.approx((sum(a) - sum(b)) / 16)
        assert row["low"] < row["estimate"] < row["high"]
        assert row["method"] == "newcombe" and row["mde"] is not None
    # No primary comparison declared: every overall comparison is one exploratory family.
    assert {r["family"] for r in overall} == {"exploratory"}
    expected = holm([r["p_value"] for r in overall])["adjusted"]
    assert [r["p_holm"] for r in overall] == pytest.approx(expected)
    assert all(r["family_size"] == 3 for r in overall)
    for r in overall:
        assert r["verdict"] == ("no effect detected" if r["p_holm"] > 0.05 else
                                "increased" if r["estimate"] > 0 else "decreased")
    # Per task: the arithmetic items are the even positions.
    arith = next(r for r in result["comparisons"] if r["task"] == "arithmetic" and r["a"].startswith("sft")
                 and r["b"].startswith("base"))
    a, b = PATTERNS["sft"][0::2], PATTERNS["base"][0::2]
    assert (arith["n10"], arith["n01"]) == (sum(x and not y for x, y in zip(a, b)), sum(y and not x for x, y in zip(a, b)))
    # Every aggregate gets an interval with its sample size.
    ivs = {(r["cell"], r["task"], r["metric"]): r for r in result["intervals"]}
    assert ivs[("sft/structured/ctx512", "all", "correct")]["n"] == 16
    assert ivs[("sft/structured/ctx512", "sentiment", "correct")]["n"] == 8
    table = read_tsv(out / "comparisons.tsv")
    assert len(table) == len(result["comparisons"])


def test_declared_primary_comparison_is_its_own_family_in_its_direction(tmp_path):
    cells, paths = build_cells(tmp_path)
    primary = [{"factor": "model", "a": "base", "b": "sft"}]  # declared as base - sft: the table runs sft - base
    result = evaluation_stats(cells, paths, {}, [], tmp_path / "stats", design="ofat", reference=cells[1],
                              n_resamples=200, confidence=0.95, seed=0, primary=primary)
    first = result["comparisons"][0]
    assert (first["family"], first["a"], first["b"], first["family_size"]) == (
        "primary", "base/structured/ctx512", "sft/structured/ctx512", 1)
    assert first["estimate"] == pytest.approx((sum(PATTERNS["base"]) - sum(PATTERNS["sft"])) / 16)
    assert first["p_holm"] == pytest.approx(first["p_value"])  # a family of one
    assert result["primary"] == [{"a": "base/structured/ctx512", "b": "sft/structured/ctx512", "ran": True}]
    others = [r for r in result["comparisons"] if r["family"] == "exploratory"]
    assert len(others) == 2 and all(r["family_size"] == 2 for r in others)
    # A share interval never collapses: base gets 0/8 on no task here, but every interval has width.
    assert all(r["high"] > r["low"] for r in result["intervals"] if r["metric"] == "correct")


def test_scoring_and_stats_are_byte_identical(tmp_path):
    outputs = []
    for run in ("one", "two"):
        root = tmp_path / run
        cells, paths = build_cells(root)
        evaluation_stats(cells, paths, {}, [], root / "stats", design="ofat", reference=cells[1],
                            n_resamples=200, confidence=0.95, seed=5)
        files = sorted(p for p in root.rglob("*") if p.is_file() and "generations" not in p.parts)
        outputs.append({p.relative_to(root).as_posix(): p.read_bytes() for p in files})
    assert outputs[0].keys() == outputs[1].keys() and len(outputs[0]) > 6
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name


def test_summary_says_when_there_is_no_judge(tmp_path):
    cells, paths = build_cells(tmp_path)
    status = {"available": False, "reason": "No win rate: the learned reward model is not available."}
    evaluation_stats(cells, paths, {}, [], tmp_path / "stats", design="ofat", reference=cells[1], n_resamples=200,
                        confidence=0.95, seed=0, judge_status=status)
    matrix = tmp_path / "matrix.tsv"
    write_matrix(matrix, all_models=["base", "sft", "dpo"], models=["base", "sft", "dpo"], prompts=["structured"],
                    contexts=[512], design="ofat", reference=cells[1],
                    generations_dir=str(tmp_path / "generations"), exists=None)
    items = tmp_path / "items.jsonl"
    write_jsonl(items, [{"id": r["id"], "task": r["task"], "lang": "en"} for r in read_jsonl(paths[0])])
    summary = evaluation_summary(tmp_path / "stats" / "stats.json", matrix, items, tmp_path / "ev" / "summary.json")
    assert status["reason"] in summary["headline"]
    assert summary["winrates"]["available"] is False and summary["winrates"]["pairs"] == {}
    assert summary["metrics"]["sft"]["all"]["estimate"] == pytest.approx(sum(PATTERNS["sft"]) / 16)
    for name in ("primary_by_model", "factors"):
        assert (tmp_path / "ev" / "figures" / f"evaluation_{name}.png").stat().st_size > 0
    metrics_table = read_tsv(tmp_path / "ev" / "tables" / "evaluation_metrics.tsv")
    assert [r["model"] for r in metrics_table] == ["base", "sft", "dpo"]
    json.dumps(read_json(tmp_path / "ev" / "summary.json"), allow_nan=False)
