"""The agents stage's glue: task subset, paired-comparison wiring, byte-stable summary.

The model is replaced by a scripted `generate` (fixed strings chosen from the prompt), so
these tests run in seconds and check the stage's bookkeeping, not a model."""

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.agents.intervals import paired_comparisons, pooled_rate
from lmlab.agents.run import PROMPT_KINDS, prompt_kind, run_arms
from lmlab.agents.selection import repeats_after_their_original, select_tasks
from lmlab.agents.summary import summarise_agents
from lmlab.core.io import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("calculation", "kb_lookup", "extraction", "multi_step")


def make_tasks(counts=(13, 11, 9, 7), n_repeats=8, seed=3):
    """Originals with uneven category counts, then repeats of seeded originals (file layout)."""
    tasks, number = [], 0
    for category, count in zip(CATEGORIES, counts):
        for _ in range(count):
            number += 1
            tasks.append({"id": f"t{number:03d}", "lang": "en", "category": category,
                          "question": f"question {number}?", "answer": str(number), "gold_calls": [],
                          "repeat_of": None})
    random.Random(seed).shuffle(tasks)  # categories interleaved as in the real file
    originals = [task["id"] for task in tasks]
    for index, original in enumerate(random.Random(seed + 1).sample(originals, n_repeats)):
        source = next(task for task in tasks if task["id"] == original)
        tasks.append({**source, "id": f"r{index:03d}", "repeat_of": original})
    return tasks


# --------------------------------------------------------------------------- task subset


@settings(max_examples=60, deadline=None)
@given(max_tasks=st.integers(1, 40), min_repeats=st.integers(0, 8), seed=st.integers(0, 10**6))
def test_subset_keeps_repeats_with_their_originals(max_tasks, min_repeats, seed):
    tasks = make_tasks()
    chosen, info = select_tasks(tasks, max_tasks, min_repeats, seed)
    ids = {task["id"] for task in chosen}
    originals = [task for task in chosen if not task["repeat_of"]]
    repeats = [task for task in chosen if task["repeat_of"]]
    assert len(originals) == max_tasks == info["n_originals"]
    # Every kept repeat has its original, and every repeat of a kept original is kept.
    assert all(task["repeat_of"] in ids for task in repeats)
    assert {t["id"] for t in tasks if t["repeat_of"] in ids} == {t["id"] for t in repeats}
    assert len(repeats) >= min(min_repeats, max_tasks)
    assert set(info["forced_originals"]) <= ids
    # Repeats run after every original, in a later lockstep batch than their own original
    # for any batch size up to the number of originals (so episodic memory can hold it).
    assert [bool(task["repeat_of"]) for task in chosen] == sorted(bool(task["repeat_of"]) for task in chosen)
    for batch_size in range(1, max_tasks + 1):
        assert sorted(repeats_after_their_original(chosen, batch_size)) == sorted(t["id"] for t in repeats)


@pytest.mark.parametrize("max_tasks", [4, 8, 12, 20])
def test_subset_is_stratified_by_category(max_tasks):
    tasks = make_tasks()
    counts = Counter(task["category"] for task in tasks if not task["repeat_of"])
    total = sum(counts.values())
    chosen, _ = select_tasks(tasks, max_tasks, min_repeats=0, seed=11)
    kept = Counter(task["category"] for task in chosen if not task["repeat_of"])
    for category, count in counts.items():
        share = max_tasks * count / total
        # Largest-remainder allocation: every category within one task of its share.
        assert abs(kept[category] - share) < 1, (category, kept, share)


def test_subset_is_deterministic_and_seeded():
    tasks = make_tasks()
    first = select_tasks(tasks, 12, 3, seed=5)
    assert first == select_tasks(tasks, 12, 3, seed=5)
    others = {tuple(select_tasks(tasks, 12, 3, seed=s)[1]["ids"]) for s in range(6)}
    assert len(others) > 1


def test_subset_zero_means_all():
    tasks = make_tasks()
    chosen, info = select_tasks(tasks, 0, 0, seed=1)
    assert info["n_tasks"] == len(tasks) and info["n_repeats"] == 8
    assert sorted(repeats_after_their_original(chosen, batch_size=40)) == sorted(
        task["id"] for task in chosen if task["repeat_of"])


def test_subset_on_the_shipped_tasks():
    rows = [json.loads(line) for line in (ROOT / "data/raw/agent_tasks.jsonl").read_text().splitlines() if line]
    chosen, info = select_tasks(rows, 8, 2, seed=1234)
    assert info["n_originals"] == 8 and info["n_repeats"] >= 2
    assert set(info["per_category"]) == set(CATEGORIES)


def test_bad_repeat_reference_is_an_input_error():
    from lmlab.core.errors import InputError

    tasks = make_tasks()
    tasks[-1] = {**tasks[-1], "repeat_of": "missing"}
    with pytest.raises(InputError):
        select_tasks(tasks, 5, 1, seed=0)


def test_prompt_kind():
    assert set(PROMPT_KINDS.values()) == {"action", "plan", "final_answer", "summary"}
    assert prompt_kind("...\nQuestion: x\nAction:") == "action"
    assert prompt_kind("...\nPlan:") == "plan"
    assert prompt_kind("Question: q\nFinal answer:") == "final_answer"
    assert prompt_kind("Final answer: 3\nSummary:") == "summary"


# --------------------------------------------------------------------------- paired wiring


def rows_for(arm, outcomes):
    return [{"id": f"t{i}", "arm": arm, "success": bool(v)} for i, v in enumerate(outcomes)]


def test_paired_comparison_counts_match_direct_counts():
    rng = random.Random(0)
    outcomes = {arm: [rng.random() < p for _ in range(40)]
                for arm, p in [("llm_only", 0.3), ("tools", 0.5), ("tools_memory", 0.55), ("tools_memory_planning", 0.4)]}
    # Shuffle one arm's row order: pairing must go by task id, not by position.
    runs = {("m", arm): rows_for(arm, values) for arm, values in outcomes.items()}
    rng.shuffle(runs[("m", "tools")])
    clusters = {f"t{i}": f"t{i}" for i in range(40)}
    result = paired_comparisons(runs, ["m"], clusters, primary=["m/tools_vs_llm_only"])
    assert [r["comparison"] for r in result] == ["tools_vs_llm_only", "memory_vs_tools", "planning_vs_memory"]
    for row in result:
        a, b = outcomes[row["treatment"]], outcomes[row["baseline"]]
        assert row["n10"] == sum(x and not y for x, y in zip(a, b))
        assert row["n01"] == sum(y and not x for x, y in zip(a, b))
        assert row["difference"]["estimate"] == pytest.approx((sum(a) - sum(b)) / len(a))
        assert row["difference"]["low"] < row["difference"]["estimate"] < row["difference"]["high"]
        assert row["p_holm"] >= row["p_value"]
        assert row["design_effect"] == 1.0  # no repeats
        assert row["mde"] is not None
    # The declared comparison is a family of one; Holm runs over the two exploratory ones.
    primary, *exploratory = result
    assert (primary["family"], primary["family_size"], primary["p_holm"]) == ("primary", 1, primary["p_value"])
    smallest = min(exploratory, key=lambda r: r["p_value"])
    assert smallest["p_holm"] == pytest.approx(min(1.0, 2 * smallest["p_value"]))


def test_a_repeat_counts_with_its_original():
    # t3 repeats t0 and t4 repeats t1: the arms differ on two questions, not on four tasks.
    runs = {("m", "tools"): rows_for("tools", [1, 1, 1, 1, 1, 1]), ("m", "llm_only"): rows_for("llm_only", [0, 0, 1, 0, 0, 1])}
    independent = paired_comparisons(runs, ["m"], {f"t{i}": f"t{i}" for i in range(6)})[0]
    clusters = {"t0": "t0", "t1": "t1", "t2": "t2", "t3": "t0", "t4": "t1", "t5": "t5"}
    clustered = paired_comparisons(runs, ["m"], clusters)[0]
    assert clustered["p_value"] > independent["p_value"]
    assert clustered["clusters"] == 4 and clustered["design_effect"] > 1
    assert clustered["mde"] is None or clustered["mde"] >= independent["mde"]


def test_paired_comparison_needs_both_arms_and_same_tasks():
    runs = {("m", "tools"): rows_for("tools", [1, 0, 1]), ("m", "tools_summary_memory"): rows_for("x", [1, 1, 1])}
    clusters = {f"t{i}": f"t{i}" for i in range(3)}
    assert paired_comparisons(runs, ["m"], clusters) == []  # tools_memory did not run
    runs[("m", "tools_memory")] = rows_for("tools_memory", [1, 0])
    with pytest.raises(ValueError, match="different tasks"):
        paired_comparisons(runs, ["m"], clusters)


def test_pooled_rate_pools_over_tasks():
    ci = pooled_rate([1, 0, 2, 3], [2, 0, 2, 4], n_resamples=300, seed=1)
    assert ci["estimate"] == pytest.approx(6 / 8)
    assert ci["n"] == 3 and ci["denominator"] == 8
    assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert pooled_rate([0, 0], [0, 0]) is None


# --------------------------------------------------------------------------- the summary

KB = [
    {"id": "kb-1", "lang": "en", "title": "Zorvex", "text": "Zorvex was founded in 1987 by Marta Quiroga."},
    {"id": "kb-2", "lang": "en", "title": "Lumina", "text": "Lumina has 412 employees."},
]
SCRIPT_TASKS = [
    {"id": "a1", "lang": "en", "category": "calculation", "question": "What is 6 * 7?", "answer": "42",
     "gold_calls": [{"tool": "calculator", "arguments": {"expression": "6 * 7"}}], "repeat_of": None},
    {"id": "a2", "lang": "en", "category": "kb_lookup", "question": "When was Zorvex founded?", "answer": "1987",
     "gold_calls": [{"tool": "search_kb", "arguments": {"query": "Zorvex founded", "k": 3}}], "repeat_of": None},
    {"id": "a3", "lang": "en", "category": "multi_step", "question": "How many employees does Lumina have plus 8?",
     "answer": "420", "gold_calls": [{"tool": "search_kb", "arguments": {"query": "Lumina employees", "k": 3}},
                                     {"tool": "calculator", "arguments": {"expression": "412 + 8"}}], "repeat_of": None},
    {"id": "a4", "lang": "en", "category": "extraction", "question": "Extract the fields name from: name: Ana <b>",
     "answer": "{\"name\":\"Ana\"}", "gold_calls": [], "repeat_of": None},
    {"id": "a5", "lang": "en", "category": "calculation", "question": "What is 6 * 7?", "answer": "42",
     "gold_calls": [{"tool": "calculator", "arguments": {"expression": "6 * 7"}}], "repeat_of": "a1"},
]


def scripted_generate(prompts):
    """Deterministic stand-in for a model: tool calls by question, then the answer."""
    outputs = []
    for prompt in prompts:
        question = re.findall(r"Question: (.*)", prompt)[-1]
        observations = prompt.count("\nObservation:") - 1  # minus the few-shot example's
        if prompt.endswith("Summary:"):
            outputs.append("Solved it.")
        elif prompt.endswith("Plan:"):
            outputs.append("1. call calculator\n2. answer")
        elif prompt.endswith("Final answer:"):
            outputs.append("42" if "6 * 7" in question else "<script>alert(1)</script>")
        elif "6 * 7" in question:
            outputs.append('{"tool": "calculator", "arguments": {"expression": "6 * 7"}}' if observations < 1
                           else '{"final_answer": "42"}')
        elif "Lumina" in question:
            steps = ['{"tool": "search_kb", "arguments": {"query": "Lumina employees"}}',
                     '{"tool": "calculator", "arguments": {"expression": "412 + 8"}}', '{"final_answer": "420"}']
            outputs.append(steps[min(observations, 2)])
        elif "Zorvex" in question:
            outputs.append('{"tool": "invented_tool", "arguments": {}}' if observations < 1 else '{"final_answer": "1990"}')
        else:
            outputs.append("I think <b>Ana</b>")
    return outputs


@pytest.fixture
def scripted_runs(tmp_path):
    tasks_path, kb_path = tmp_path / "tasks.jsonl", tmp_path / "kb.jsonl"
    write_jsonl(tasks_path, SCRIPT_TASKS)
    write_jsonl(kb_path, KB)
    arms = ("llm_only", "tools", "tools_memory", "tools_memory_planning", "tools_summary_memory",
            "tools_memory_heuristic_plan")
    outputs = {arm: {name: tmp_path / "runs" / arm / f"{name}{ext}" for name, ext in
                     (("traces", ".jsonl"), ("metrics", ".json"), ("per_task", ".tsv"), ("timing", ".json"))}
               for arm in arms}
    run_arms(None, "", tasks_path, kb_path, outputs, "scripted", max_tasks=0, min_repeats=0, max_steps=3,
             batch_size=2, max_new_tokens={"action": 8, "plan": 8, "final_answer": 8, "summary": 8},
             prompt_format="raw", seed=0, generate=scripted_generate)
    runs = [{"model": "scripted", "arm": arm, "traces": str(outputs[arm]["traces"]),
             "metrics": str(outputs[arm]["metrics"]), "timing": str(outputs[arm]["timing"])} for arm in arms]
    return tasks_path, runs


def summarise_into(folder, tasks_path, runs):
    outputs = {name: folder / name for name in (
        "summary.json", "tables/agent_ablation.tsv", "tables/agent_paired.tsv", "tables/agent_categories.tsv",
        "figures/agent_ablation.png", "figures/agent_ablation.pdf")}
    summary = summarise_agents(runs, tasks_path, *outputs.values(), models=["scripted"],
                               arms=[run["arm"] for run in runs], timing_path=folder / "timing" / "summary.json",
                               latency_path=folder / "timing" / "agent_latency.tsv", skipped_models={"sft": "not trained"},
                               n_resamples=200, seed=0)
    return summary, outputs


def test_summary_tables_are_byte_identical(tmp_path, scripted_runs):
    tasks_path, runs = scripted_runs
    summary, first = summarise_into(tmp_path / "one", tasks_path, runs)
    _, second = summarise_into(tmp_path / "two", tasks_path, runs)
    for name in ("summary.json", "tables/agent_ablation.tsv", "tables/agent_paired.tsv", "tables/agent_categories.tsv",
                 "figures/agent_ablation.png", "figures/agent_ablation.pdf"):
        assert first[name].read_bytes() == second[name].read_bytes(), name
    # The wall clock went to the timing file, none of it into summary.json.
    assert "timing" not in json.loads(first["summary.json"].read_text())
    assert "mean_latency_s" in (tmp_path / "one" / "timing" / "agent_latency.tsv").read_text()
    assert first["figures/agent_ablation.png"].stat().st_size > 0
    runs_ = summary["runs"]["scripted"]
    # The scripted model gets the calculation right with and without tools, the multi-step
    # task only with tools; the repeat is answered from episodic memory.
    assert runs_["llm_only"]["success"]["estimate"] == pytest.approx(2 / 5)
    assert runs_["tools"]["success"]["estimate"] == pytest.approx(3 / 5)
    assert summary["memory"]["scripted"]["tools_memory"]["n_reused"] == 1
    assert summary["memory"]["scripted"]["tools"]["n_reused"] == 0
    assert runs_["tools"]["invented_tool_rate"]["estimate"] > 0
    assert summary["example_trace"]["id"] == "a3" and summary["example_trace"]["success"]
    assert summary["skipped_models"] == {"sft": "not trained"}
    assert {row["comparison"] for row in summary["paired"]} == {
        "tools_vs_llm_only", "memory_vs_tools", "planning_vs_memory", "summary_vs_episodic_memory",
        "heuristic_vs_llm_planning"}


def test_run_writes_every_step(scripted_runs):
    _, runs = scripted_runs
    traces = [json.loads(line) for line in Path(runs[1]["traces"]).read_text().splitlines()]
    assert [trace["id"] for trace in traces] == [task["id"] for task in SCRIPT_TASKS]
    step = traces[0]["steps"][0]
    for key in ("prompt", "raw_output", "parsed", "tool", "tool_input", "tool_output", "memory_reads",
                "memory_writes"):
        assert key in step
    assert "latency_s" not in step and "latency_s" not in traces[0]  # wall clock: in the timing file
    assert traces[0]["final_answer"] == "42" and traces[0]["model"] == "scripted"
    metrics = json.loads(Path(runs[1]["metrics"]).read_text())
    timing = json.loads(Path(runs[1]["timing"]).read_text())
    assert "mean_latency_s" not in metrics["metrics"] and "timing" not in metrics
    assert "mean_latency_s" in timing["timing"] and set(timing["timing"]["latency_s_by_task"]) == {t["id"] for t in traces}


def test_section_escapes_model_text(tmp_path, scripted_runs):
    pytest.importorskip("jinja2")
    from lmlab.paper.render import jinja_env, load_stage

    tasks_path, runs = scripted_runs
    _, outputs = summarise_into(tmp_path / "out", tasks_path, runs)
    summary, tables = load_stage(outputs["summary.json"])
    # Put hostile model text into the annotated trace, as a model could write it.
    summary["example_trace"]["steps"][0]["model_output"] = "<script>alert(1)</script>"
    env = jinja_env(ROOT / "report")
    html = env.from_string('{% import "macros.html.j2" as m %}{% include "sections/agents.html.j2" %}').render(
        s=summary, tables=tables)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "agent_ablation" in html
