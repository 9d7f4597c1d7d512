"""Evaluation wiring: matrix expansion, test subset, scoring + statistics, summary."""

import json

import pytest

from lmlab.evaluation import cells as ev
from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_jsonl, read_tsv, write_jsonl
from lmlab.core.stats import holm, mcnemar_exact

MODELS = ["base", "sft", "dpo"]
PROMPTS = ["short", "structured", "constrained"]
CONTEXTS = [64, 512]
REF = {"model": "sft", "prompt": "structured", "context": 512}


# ----------------------------------------------------------------------------- matrix


def test_ofat_and_factorial_cell_counts():
    ofat = ev.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", REF)
    factorial = ev.design_cells(MODELS, PROMPTS, CONTEXTS, "factorial", REF)
    # Reference + the other levels of each factor, one factor at a time.
    assert len(ofat) == 1 + (3 - 1) + (3 - 1) + (2 - 1)
    assert len(factorial) == 3 * 3 * 2
    assert {ev.cell_id(c) for c in ofat} <= {ev.cell_id(c) for c in factorial}
    for cell in ofat:
        assert sum(cell[a] != REF[a] for a in ev.AXES) <= 1
    assert len({ev.cell_id(c) for c in ofat}) == len(ofat)


def test_ofat_comparisons_are_one_factor_pairs():
    ofat = ev.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", REF)
    pairs = ev.differing_pairs(ofat)
    by_factor = {}
    for factor, a, b in pairs:
        by_factor[factor] = by_factor.get(factor, 0) + 1
        assert [x for x in ev.AXES if a[x] != b[x]] == [factor]
    # All pairs among the levels on each axis through the reference cell.
    assert by_factor == {"model": 3, "prompt": 3, "context": 1}
    factorial = ev.design_cells(MODELS, PROMPTS, CONTEXTS, "factorial", REF)
    # Factorial: for each factor, pairs of its levels at every combination of the others.
    assert len(ev.differing_pairs(factorial)) == 3 * 2 * 3 + 3 * 2 * 3 + 1 * 3 * 3


def test_reference_falls_back_to_base_without_sft():
    cells = ev.design_cells(["base"], PROMPTS, CONTEXTS, "ofat", REF)
    assert {c["model"] for c in cells} == {"base"}
    assert len(cells) == 1 + 2 + 1
    with pytest.raises(InputError, match="reference.prompt"):
        ev.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", {**REF, "prompt": "nope"})
    with pytest.raises(InputError, match="design"):
        ev.design_cells(MODELS, PROMPTS, CONTEXTS, "latin-square", REF)


def test_matrix_rows_list_full_factorial_with_design_and_ran():
    ran = {ev.generation_path({"model": "sft", "prompt": "structured", "context": 512}),
           ev.generation_path({"model": "base", "prompt": "short", "context": 64})}
    rows = ev.matrix_rows(
        all_models=MODELS + ["orpo"],
        models=MODELS,
        prompts=PROMPTS,
        contexts=CONTEXTS,
        design="ofat",
        reference=REF,
        agent_arms=[{"arm": "react", "model": "sft", "path": "results/agents/react/traces.jsonl"}],
        exists=lambda p: p in ran,
    )
    cells = [r for r in rows if r["stage"] == "evaluation"]
    assert len(cells) == 4 * 3 * 2  # orpo is listed although its stage is not configured
    assert sum(r["in_design"] for r in cells) == 6
    assert not any(r["in_design"] for r in cells if r["model"] == "orpo")
    assert sum(r["ran"] for r in cells) == 2
    # A cell outside the design can have run (e.g. an earlier factorial run).
    off_design = [r for r in cells if r["ran"] and not r["in_design"]]
    assert [(r["model"], r["prompt"], r["context"]) for r in off_design] == [("base", "short", 64)]
    agents = [r for r in rows if r["stage"] == "agents"]
    assert agents and agents[0]["agent_arm"] == "react" and not agents[0]["ran"]


def test_resolve_models_expands_rloo_and_drops_unconfigured():
    available = {"base": "", "sft": "s", "dpo": "d", "rloo_rm": "r1", "rloo_verifiable": "r2"}
    matrix, evaluated = ev.resolve_models(["base", "sft", "dpo", "orpo", "rloo"], available)
    assert matrix == ["base", "sft", "dpo", "orpo", "rloo_rm", "rloo_verifiable"]
    assert evaluated == ["base", "sft", "dpo", "rloo_rm", "rloo_verifiable"]
    matrix, evaluated = ev.resolve_models(["base", "rloo"], {"base": ""})
    assert matrix == ["base", "rloo"] and evaluated == ["base"]
    assert ev.baseline_of("sft") == "base" and ev.baseline_of("rloo_rm") == "sft" and ev.baseline_of("base") is None


def test_resolve_prompt_maps_sft_alias():
    assert ev.resolve_prompt({"template": "sft", "constrained": True}, "chat") == ("chat", True)
    assert ev.resolve_prompt({"template": "minimal"}, "chat") == ("minimal", False)


def test_test_subset_is_stratified_balanced_and_seeded():
    rows = [
        {"id": f"{task}-{lang}-{i}", "task": task, "lang": lang}
        for task in ("arithmetic", "kb_qa")
        for lang in ("en", "es")
        for i in range(7)
    ]
    subset = ev.select_test_items(rows, 4, seed=3)
    for task in ("arithmetic", "kb_qa"):
        mine = [r for r in subset if r["task"] == task]
        assert len(mine) == 4
        assert sum(r["lang"] == "en" for r in mine) == 2
    assert subset == ev.select_test_items(rows, 4, seed=3)
    assert subset != ev.select_test_items(rows, 4, seed=4)
    # File order is kept, and 0 means every row.
    assert [rows.index(r) for r in subset] == sorted(rows.index(r) for r in subset)
    assert ev.select_test_items(rows, 0, seed=3) == rows
    # A task's own limit replaces the common one.
    limited = ev.select_test_items(rows, 4, seed=3, max_items_by_task={"kb_qa": 2})
    assert sum(r["task"] == "kb_qa" for r in limited) == 2 and sum(r["task"] == "arithmetic" for r in limited) == 4


# ----------------------------------------------------------------------------- scoring + stats


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
    gen = tmp_path / "generations" / f"{ev.cell_id(cell)}.jsonl"
    write_jsonl(gen, rows)
    met = tmp_path / "metrics" / f"{ev.cell_id(cell)}.jsonl"
    ev.score_cell(gen, met, met.with_suffix(".tsv"), rouge_threshold=0.4)
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
    result = ev.evaluation_stats(cells, paths, {}, [], out, design="ofat", reference=cells[1], n_resamples=200,
                                 confidence=0.95, seed=0)
    overall = [r for r in result["comparisons"] if r["task"] == "all"]
    assert len(overall) == 3  # sft-base, dpo-base, dpo-sft
    for row in overall:
        a, b = PATTERNS[row["a"].split("/")[0]], PATTERNS[row["b"].split("/")[0]]
        n10 = sum(x and not y for x, y in zip(a, b))
        n01 = sum(y and not x for x, y in zip(a, b))
        assert (row["n10"], row["n01"], row["n"]) == (n10, n01, 16)
        assert row["p_mcnemar"] == pytest.approx(mcnemar_exact(a, b)["p_value"])
        assert row["estimate"] == pytest.approx((sum(a) - sum(b)) / 16)
        assert row["low"] <= row["estimate"] <= row["high"]
    expected = holm([r["p_mcnemar"] for r in overall])["adjusted"]
    assert [r["p_holm"] for r in overall] == pytest.approx(expected)
    assert all(r["holm_family_size"] == 3 for r in overall)
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


def test_scoring_and_stats_are_byte_identical(tmp_path):
    outputs = []
    for run in ("one", "two"):
        root = tmp_path / run
        cells, paths = build_cells(root)
        ev.evaluation_stats(cells, paths, {}, [], root / "stats", design="ofat", reference=cells[1],
                            n_resamples=200, confidence=0.95, seed=5)
        files = sorted(p for p in root.rglob("*") if p.is_file() and "generations" not in p.parts)
        outputs.append({p.relative_to(root).as_posix(): p.read_bytes() for p in files})
    assert outputs[0].keys() == outputs[1].keys() and len(outputs[0]) > 6
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name


def test_summary_says_when_there_is_no_judge(tmp_path):
    cells, paths = build_cells(tmp_path)
    status = {"available": False, "reason": "No win rate: the learned reward model is not available."}
    ev.evaluation_stats(cells, paths, {}, [], tmp_path / "stats", design="ofat", reference=cells[1], n_resamples=200,
                        confidence=0.95, seed=0, judge_status=status)
    matrix = tmp_path / "matrix.tsv"
    ev.write_matrix(matrix, all_models=["base", "sft", "dpo"], models=["base", "sft", "dpo"], prompts=["structured"],
                    contexts=[512], design="ofat", reference=cells[1],
                    exists=None)
    items = tmp_path / "items.jsonl"
    write_jsonl(items, [{"id": r["id"], "task": r["task"], "lang": "en"} for r in read_jsonl(paths[0])])
    summary = ev.evaluation_summary(tmp_path / "stats" / "stats.json", matrix, items, tmp_path / "ev" / "summary.json")
    assert status["reason"] in summary["headline"]
    assert summary["winrates"]["available"] is False and summary["winrates"]["pairs"] == {}
    assert summary["metrics"]["sft"]["all"]["estimate"] == pytest.approx(sum(PATTERNS["sft"]) / 16)
    for name in ("primary_by_model", "factors"):
        assert (tmp_path / "ev" / "figures" / f"evaluation_{name}.png").stat().st_size > 0
    metrics_table = read_tsv(tmp_path / "ev" / "tables" / "evaluation_metrics.tsv")
    assert [r["model"] for r in metrics_table] == ["base", "sft", "dpo"]
    json.dumps(read_json(tmp_path / "ev" / "summary.json"), allow_nan=False)


def test_judge_pair_orders_ties_and_position_averaging():
    ids = [f"i{k}" for k in range(6)]
    items = {i: {"id": i, "task": "arithmetic"} for i in ids}
    gen_a = {i: {"tokens_out": 5 + k} for k, i in enumerate(ids)}
    gen_b = {i: {"tokens_out": 5} for i in ids}
    reward_a = dict(zip(ids, [2.0, 1.0, 0.0, 1.0, 3.0, 0.5]))
    reward_b = dict(zip(ids, [1.0, 1.0, 1.0, 0.0, 0.0, 0.5]))
    # Position judge: (A first: verdict A, verdict B), (B first: verdict A, verdict B).
    position = {
        "i0": [1.0, 0.0, 0.0, 1.0],  # prefers model A in both orders -> 1
        "i1": [1.0, 0.0, 1.0, 0.0],  # always prefers the first answer -> 0.5
        "i2": [0.0, 1.0, 1.0, 0.0],  # prefers model B in both orders -> 0
        "i3": [0.5, 0.5, 0.0, 1.0],  # tie, then A -> 0.75
        "i4": [1.0, 0.0, 0.0, 1.0],
        "i5": [0.0, 1.0, 0.0, 1.0],  # always the second answer -> 0.5
    }
    result, rows = ev.judge_pair(items, gen_a, gen_b, reward_a, reward_b, position, model_a="sft", model_b="base",
                                 n_resamples=200, confidence=0.95, seed=0)
    by_id = {r["id"]: r for r in rows}
    assert [by_id[i]["scalar"] for i in ids] == [1.0, 0.5, 0.0, 1.0, 1.0, 0.5]
    assert [by_id[i]["position"] for i in ids] == [1.0, 0.5, 0.0, 0.75, 1.0, 0.5]
    scalar = result["judges"]["scalar"]
    assert scalar["order_agreement"] == 1.0  # a scalar reward cannot depend on the order
    assert scalar["raw"]["estimate"] == pytest.approx(4 / 6)
    assert (scalar["raw"]["wins"], scalar["raw"]["ties"], scalar["raw"]["losses"]) == (3, 2, 1)
    position_result = result["judges"]["position"]
    assert position_result["raw"]["estimate"] == pytest.approx(3.75 / 6)
    assert position_result["order_agreement"] == pytest.approx(3 / 6)
    assert position_result["first_position_preference"] == pytest.approx((0.5 + 1 + 0.5 + 0.25 + 0.5 + 0) / 6)
    assert [r["length_diff"] for r in rows] == list(range(6))
    lc = position_result["length_controlled"]
    assert 0 <= lc["low"] <= lc["estimate"] <= lc["high"] <= 1
