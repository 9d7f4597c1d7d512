"""Win rates from the reward model's scores: both orders, ties, position averaging."""

import pytest

from lmlab.evaluation.judge import judge_pair


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
    result, rows = judge_pair(items, gen_a, gen_b, reward_a, reward_b, position, model_a="sft", model_b="base",
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
