"""Agent metrics on hand-made traces; every expected number is worked out in the comments."""

import pytest

from lmlab.agents.metrics import (
    agent_metrics,
    aggregate_agent_metrics,
    answer_contains_gold,
    answers_match,
    call_arguments_match,
    is_hallucination,
    match_calls,
    score_trace,
    score_traces,
)


def step(kind, tool=None, arguments=None, output=None, error=None, memory_reads=(), latency_s=0.5):
    return {"step": 0, "prompt": "", "raw_output": "", "parsed": {"kind": kind, "tool": tool}, "tool": tool,
            "tool_input": arguments, "tool_output": output, "error": error, "memory_reads": list(memory_reads),
            "memory_writes": [], "latency_s": latency_s}


def tool_step(tool, output=None, error_type=None, **arguments):
    error = {"type": error_type, "message": "failed"} if error_type else None
    return step("tool_call", tool, arguments, None if error else output, error)


def trace(steps, final_answer, gold_answer, gold_calls=(), category="calculation", arm="tools",
          task_id="t", question="Question?", reused=False, stopped_by=None):
    return {"id": task_id, "category": category, "question": question, "gold_answer": gold_answer,
            "gold_calls": list(gold_calls), "arm": arm, "steps": steps, "final_answer": final_answer,
            "reused_episode": reused, "n_steps": len(steps),
            "stopped_by": stopped_by or ("final" if final_answer is not None else "budget"),
            "latency_s": sum(s["latency_s"] for s in steps)}


def gold(tool, **arguments):
    return {"tool": tool, "arguments": arguments}


# ---------------------------------------------------------------------------------------
# answers


@pytest.mark.parametrize(
    "predicted, gold_answer, expected",
    [
        ("42", "42", True),
        ("42.0", "42", True),
        ("The answer is 42.", "42", True),  # exactly one number in the answer
        ("42 or 43", "42", False),  # two numbers: not an answer
        ("42.4", "42", False),  # integer gold: no half-unit tolerance
        ("3.3333", "3.33", True),  # within half a unit of the gold's last decimal
        ("3.34", "3.33", False),
        ("1,234.5", "1234.5", True),
        ("-7", "-7", True),
        ("Marta Quiroga", "marta quiroga", True),
        ("  Sevílla. ", "Sevilla", True),  # case, accents, punctuation
        ("Sevilla, Spain", "Sevilla", False),
        ('{"email": "a@b.co", "age": 30}', '{"age": 30, "email": "a@b.co"}', True),  # key order
        ('{"email": "A@B.co", "age": "30"}', '{"age": 30, "email": "a@b.co"}', True),  # text and number form
        ('```json\n{"age": 30}\n```', '{"age": 30}', True),
        ('{"age": 31}', '{"age": 30}', False),
        ('{"age": 30}', '{"age": 30, "email": "a@b.co"}', False),  # missing key
        ('{"age": 30, "email": null}', '{"age": 30, "email": null}', True),
        ("age is 30", '{"age": 30}', False),
        (None, "42", False),
        ("", "", False),
    ],
)
def test_answers_match(predicted, gold_answer, expected):
    assert answers_match(predicted, gold_answer) is expected


def test_contains_gold_is_the_lenient_variant():
    assert answer_contains_gold("It was founded by Marta Quiroga in 1987.", "Marta Quiroga")
    assert answer_contains_gold("founded in 1987, 37 years ago", "1987")
    assert not answer_contains_gold("Marta", "Marta Quiroga")
    assert not answers_match("It was founded by Marta Quiroga in 1987.", "Marta Quiroga")


# ---------------------------------------------------------------------------------------
# calls


@pytest.mark.parametrize(
    "tool, predicted, gold_arguments, expected",
    [
        ("calculator", {"expression": "2 * (3 + 4)"}, {"expression": "14"}, True),  # by value
        ("calculator", {"expression": "2 + 2"}, {"expression": "5"}, False),
        ("calculator", {"expression": "__import__('os')"}, {"expression": "5"}, False),
        ("calculator", {"expression": 5}, {"expression": "5"}, False),
        ("search_kb", {"query": "When was Zorvex founded"}, {"query": "Zorvex founded", "k": 3}, True),  # 2/2
        ("search_kb", {"query": "Zorvex"}, {"query": "Zorvex founded", "k": 3}, True),  # 1/2 = 0.5
        ("search_kb", {"query": "Lumina"}, {"query": "Zorvex founded year", "k": 3}, False),  # 0/3
        ("search_kb", {"query": "zorvex"}, {"query": "Zorvex founded year"}, False),  # 1/3 < 0.5
        ("extract_fields", {"text": "x", "fields": ["email", "Name"]}, {"text": "y", "fields": ["name", "email"]}, True),
        ("extract_fields", {"text": "x", "fields": ["name"]}, {"text": "x", "fields": ["name", "email"]}, False),
        ("extract_fields", {"text": "x", "fields": "name"}, {"text": "x", "fields": ["name"]}, False),
    ],
)
def test_call_arguments_match(tool, predicted, gold_arguments, expected):
    assert call_arguments_match(tool, predicted, gold_arguments) is expected


def test_tool_precision_recall_and_rates_on_a_hand_made_trace():
    gold_calls = [gold("search_kb", query="Zorvex founded", k=3), gold("calculator", expression="2024 - 1987")]
    steps = [
        tool_step("search_kb", output=[{"id": "kb-1", "text": "Zorvex was founded in 1987."}], query="Zorvex founded"),
        tool_step("search_kb", output=[], query="Zorvex"),  # a second search: not needed
        tool_step("weather", error_type="unknown_tool", city="Paris"),  # invented
        step("format_error"),
        tool_step("calculator", output="37", expression="2024-1987"),
        step("final"),
    ]
    row = score_trace(trace(steps, "37", "37", gold_calls, category="multi_step"))
    # 4 calls (search, search, weather, calculator); gold {search_kb, calculator}: matched 2.
    assert (row["n_calls"], row["n_gold_calls"], row["n_matched_calls"]) == (4, 2, 2)
    assert row["tool_precision"] == pytest.approx(2 / 4)
    assert row["tool_recall"] == pytest.approx(2 / 2)
    assert row["invented_tool_rate"] == pytest.approx(1 / 4)
    assert row["unnecessary_call_rate"] == pytest.approx(1 / 4)  # the second search_kb
    # Both matched calls have matching arguments (first search; calculator by value).
    assert row["argument_accuracy"] == pytest.approx(2 / 2)
    # Steps with a protocol turn: 4 tool calls + 1 format error + 1 final = 6; errors 1.
    assert row["format_error_rate"] == pytest.approx(1 / 6)
    assert row["success"] is True and row["hallucination"] is False
    assert row["n_steps"] == 6 and row["latency_s"] == pytest.approx(3.0)


def test_recall_below_one_and_wrong_arguments():
    gold_calls = [gold("calculator", expression="6*7"), gold("calculator", expression="42+1")]
    steps = [tool_step("calculator", output="12", expression="6+6"), step("final")]
    row = score_trace(trace(steps, "12", "43", gold_calls))
    # one calculator call vs two gold: matched 1, precision 1/1, recall 1/2; its value 12 matches neither.
    assert (row["tool_precision"], row["tool_recall"], row["argument_accuracy"]) == (1.0, 0.5, 0.0)
    assert row["success"] is False


def test_no_calls_gives_undefined_precision_and_zero_recall():
    row = score_trace(trace([step("final")], "43", "43", [gold("calculator", expression="42+1")], arm="llm_only"))
    assert row["tool_precision"] is None and row["tool_recall"] == 0.0 and row["invented_tool_rate"] is None


def test_match_calls_counts_multisets():
    calls = [{"tool": "search_kb", "arguments": {"query": "a"}}] * 3 + [{"tool": "made_up", "arguments": {}}]
    gold_calls = [gold("search_kb", query="a"), gold("search_kb", query="b"), gold("calculator", expression="1")]
    counts = match_calls(calls, gold_calls)
    # search_kb: 3 predicted vs 2 gold -> 2 matched, 1 unnecessary; made_up invented; query 'a' matches
    # one gold call ('a') but not 'b' -> 1 correct argument set.
    assert counts == {"n_matched": 2, "n_invented": 1, "n_unnecessary": 1, "n_arguments_correct": 1}


# ---------------------------------------------------------------------------------------
# hallucination


def kb_trace(answer, outputs, category="kb_lookup", question="When was Zorvex founded?", **kwargs):
    steps = [tool_step("search_kb", output=output, query="Zorvex") for output in outputs] + [step("final")]
    return trace(steps, answer, "1987", category=category, question=question, **kwargs)


KB_HIT = [{"id": "kb-1", "title": "Zorvex", "text": "Zorvex was founded in 1987 by Marta Quiroga.", "score": 2.5}]


@pytest.mark.parametrize(
    "answer, outputs, expected",
    [
        ("1987", [KB_HIT], False),
        ("It was founded in 1987 by Marta Quiroga.", [KB_HIT], False),
        ("1990", [KB_HIT], True),  # a year no tool returned
        ("Pedro Núñez", [KB_HIT], True),  # a name no tool returned
        ("2.5", [KB_HIT], True),  # the search score is not evidence
        ("1987", [], True),  # nothing retrieved, nothing in the question
        ("unknown", [KB_HIT], True),  # a short lowercase answer asserts its words
        ("zorvex", [], False),  # ... which may come from the question
    ],
)
def test_hallucination_on_kb_lookup(answer, outputs, expected):
    assert is_hallucination(kb_trace(answer, outputs)) is expected


def test_hallucination_is_only_judged_for_kb_and_multi_step_answers():
    assert is_hallucination(kb_trace("1990", [KB_HIT], category="calculation")) is None
    assert is_hallucination(kb_trace(None, [KB_HIT])) is None


def test_calculator_output_supports_a_derived_number_in_multi_step():
    steps = [tool_step("search_kb", output=KB_HIT, query="Zorvex"),
             tool_step("calculator", output="37", expression="2024 - 1987"), step("final")]
    derived = trace(steps, "37", "37", category="multi_step", question="How old is Zorvex in 2024?")
    assert is_hallucination(derived) is False
    assert is_hallucination({**derived, "final_answer": "38"}) is True


def test_failed_tool_calls_are_not_evidence():
    steps = [tool_step("search_kb", error_type="tool_error", query="Zorvex"), step("final")]
    steps[0]["tool_output"] = KB_HIT  # even if an output were recorded
    assert is_hallucination(trace(steps, "1987", "1987", category="kb_lookup", question="When?")) is True


def test_reused_episode_tool_results_are_evidence():
    read = {"kind": "episodic", "episode_id": "t1", "score": 1.0, "answer": "1987",
            "tool_results": [{"tool": "search_kb", "output": KB_HIT}]}
    reuse = trace([step("memory_reuse", memory_reads=[read], latency_s=0.0)], "1987", "1987",
                  [gold("search_kb", query="Zorvex")], category="kb_lookup", question="When?", reused=True)
    assert is_hallucination(reuse) is False
    row = score_trace(reuse)
    # a reused answer made no tool decisions: tool metrics are left out, not zero
    assert row["tool_precision"] is None and row["tool_recall"] is None and row["argument_accuracy"] is None
    assert row["format_error_rate"] is None and row["success"] is True


# ---------------------------------------------------------------------------------------
# rows and aggregates


def test_aggregates_pool_counts_per_arm():
    gold_calls = [gold("calculator", expression="2+2")]
    traces = [
        # arm A, task 1: right call, right answer; 2 protocol steps, no errors.
        trace([tool_step("calculator", output="4", expression="2+2"), step("final")], "4", "4", gold_calls,
              arm="A", task_id="1"),
        # arm A, task 2: invented tool, format error, then budget; 3 protocol steps, 1 error.
        trace([tool_step("calc", error_type="unknown_tool", expression="2+2"), step("format_error"),
               tool_step("calculator", output="5", expression="2+3")], None, "4", gold_calls,
              arm="A", task_id="2", stopped_by="budget"),
        # arm B, task 1: answered from memory, correct.
        trace([step("memory_reuse", latency_s=0.0)], "4", "4", gold_calls, arm="B", task_id="1", reused=True),
        # arm B, task 2: no call, wrong answer.
        trace([step("final")], "5", "4", gold_calls, arm="B", task_id="2"),
    ]
    result = agent_metrics(traces)
    rows, arms = result["per_task"], result["per_arm"]
    assert [(row["arm"], row["id"]) for row in rows] == [("A", "1"), ("A", "2"), ("B", "1"), ("B", "2")]
    a, b = arms["A"], arms["B"]
    assert a["n_tasks"] == 2 and a["success_rate"] == 0.5
    # A: calls 1 + 2 = 3, matched 1 + 1 = 2, gold 1 + 1 = 2 -> precision 2/3, recall 2/2.
    assert a["tool_precision"] == pytest.approx(2 / 3) and a["tool_recall"] == 1.0
    # matched calls with right arguments: task 1 yes (2+2), task 2 no (2+3 = 5) -> 1/2.
    assert a["argument_accuracy"] == 0.5
    assert a["invented_tool_rate"] == pytest.approx(1 / 3)
    assert a["format_error_rate"] == pytest.approx(1 / 5)  # 1 error in 2 + 3 protocol steps
    assert a["mean_steps"] == pytest.approx(2.5)
    assert a["stopped_by"] == {"final": 1, "budget": 1, "format": 0}
    # B: the reused task is left out of tool metrics; task 2 made 0 calls for 1 gold call.
    assert b["tool_precision"] is None and b["tool_recall"] == 0.0
    assert b["reuse_rate"] == 0.5 and b["success_rate"] == 0.5
    assert b["success_by_category"] == {"calculation": 0.5}
    assert a["hallucination_rate"] is None  # no kb_lookup or multi_step tasks


def test_score_traces_takes_gold_calls_from_tasks():
    traces = [trace([tool_step("calculator", output="4", expression="2+2"), step("final")], "4", "4", [],
                    task_id="x")]
    tasks = [{"id": "x", "gold_calls": [gold("calculator", expression="4")]}]
    [row] = score_traces(traces, tasks)
    assert row["n_gold_calls"] == 1 and row["tool_recall"] == 1.0 and row["argument_accuracy"] == 1.0
    with pytest.raises(ValueError):
        score_traces(traces, [{"id": "other", "gold_calls": []}])


def test_aggregate_of_no_rows_is_empty():
    assert aggregate_agent_metrics([]) == {}
