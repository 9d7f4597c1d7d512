"""The seeds section: each primary comparison lined up over training seeds, with its spread."""

import math

import pytest

from lmlab.paper.seeds import SEED_COLUMNS, primary_comparisons, seed_rows, seed_summary, spread


def evaluation(estimate, verdict, family="primary"):
    return {"comparisons": [
        {"family": family, "a": "sft", "b": "base", "estimate": estimate, "low": estimate - 0.1,
         "high": estimate + 0.1, "n": 40, "p_holm": 0.01, "verdict": verdict, "mde": 0.2},
        {"family": "exploratory", "a": "dpo", "b": "sft", "metric": "correct", "estimate": 0.5, "low": 0.4,
         "high": 0.6, "n": 40, "p_holm": 0.5, "verdict": "no difference detected", "mde": 0.2}]}


def agents(estimate, verdict):
    return {"paired": [{"family": "primary", "model": "sft", "treatment": "tools", "baseline": "llm_only",
                        "difference": {"estimate": estimate, "low": None, "high": None, "n": 12}, "n": 12,
                        "p_holm": 0.2, "verdict": verdict, "mde": 0.4}]}


def test_only_primary_comparisons_are_lined_up():
    rows = primary_comparisons(evaluation(0.2, "increased"), agents(0.1, "no difference detected"))
    assert [(r["stage"], r["comparison"]) for r in rows] == [("evaluation", "sft − base"),
                                                             ("agents", "sft: tools − llm_only")]
    assert rows[1]["estimate"] == 0.1 and rows[1]["n"] == 12
    # The evaluation's primary comparisons are on its primary metric, the share correct.
    assert [r["metric"] for r in rows] == ["share correct", "share of tasks solved"]
    assert primary_comparisons(None, None) == []


def test_spread_and_verdicts_across_seeds():
    s = seed_summary(["7", "8", "9"], {"7": evaluation(0.2, "increased"), "8": evaluation(0.1, "no difference detected"),
                                       "9": evaluation(0.3, "increased")},
                     {k: agents(0.0, "no difference detected") for k in ("7", "8", "9")})
    assert s["reference_seed"] == "7" and s["n_seeds"] == 3
    ev, ag = s["comparisons"]
    assert [r["seed"] for r in ev["per_seed"]] == ["7", "8", "9"]
    assert ev["spread"]["mean"] == pytest.approx(0.2) and ev["spread"]["sd"] == pytest.approx(0.1)
    assert (ev["spread"]["min"], ev["spread"]["max"]) == (0.1, 0.3)
    assert ev["verdicts"] == {"increased": 2, "no difference detected": 1} and not ev["same_verdict"]
    assert ag["same_verdict"] and ag["spread"]["sd"] == 0.0


def test_one_seed_has_no_standard_deviation_and_missing_estimates_are_skipped():
    assert spread([0.4])["sd"] is None and spread([0.4])["n_seeds"] == 1
    assert spread([None, None]) == {"n_seeds": 0, "mean": None, "sd": None, "min": None, "max": None}
    assert spread([None, 0.2, 0.4])["mean"] == pytest.approx(0.3)
    assert not math.isnan(spread([1.0, 1.0])["sd"])


def test_a_comparison_missing_in_one_seed_does_not_claim_agreement():
    s = seed_summary(["7", "8"], {"7": evaluation(0.2, "increased"), "8": {"comparisons": []}}, {})
    (ev,) = s["comparisons"]
    assert len(ev["per_seed"]) == 1 and not ev["same_verdict"]


def test_table_keys_first_then_estimate_then_the_spread_row():
    s = seed_summary(["7", "8"], {"7": evaluation(0.2, "increased"), "8": evaluation(0.1, "increased")}, {})
    rows = seed_rows(s)
    assert list(rows[0]) == SEED_COLUMNS and SEED_COLUMNS[:4] == ["stage", "comparison", "metric", "seed"]
    assert [r["seed"] for r in rows] == ["7", "8", "across seeds"]
    assert rows[0]["estimate [interval], n"] == "0.200 [0.100, 0.300], n = 40"
    assert "mean 0.150, sd 0.071, range [0.100, 0.200], 2 seeds" == rows[2]["estimate [interval], n"] and rows[2]["verdict"] == "increased: 2"
