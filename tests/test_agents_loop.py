"""The agent loop's logic, driven by a scripted `generate`.

The scripted generator is a stand-in for the model in these unit tests only: it returns
fixed strings chosen by the question and the turn number found in the prompt, so every
branch of the loop (tools, errors, memory, planning, budgets) runs deterministically."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmlab.agents.loop import (
    ARMS,
    append_summary,
    find_reusable_episode,
    heuristic_plan,
    make_episode,
    new_task_state,
    parse_action,
    parse_plan,
    render_agent_prompt,
    render_observation,
    retrieve_episodes,
    run_agent,
)

KB_ROWS = [
    {"id": "kb-1", "lang": "en", "title": "Zorvex", "text": "Zorvex was founded in 1987 by Marta Quiroga."},
    {"id": "kb-2", "lang": "en", "title": "Lumina", "text": "Lumina was founded in 1990 in Sevilla."},
    {"id": "kb-3", "lang": "en", "title": "Orbital river", "text": "The Orbital river is 412 km long."},
]


def call(tool, **arguments):
    return json.dumps({"tool": tool, "arguments": arguments})


def final(answer):
    return json.dumps({"final_answer": answer})


def task(task_id, question, category="calculation", answer="", gold_calls=(), repeat_of=None):
    return {"id": task_id, "lang": "en", "category": category, "question": question, "answer": answer,
            "gold_calls": list(gold_calls), "repeat_of": repeat_of}


def scripted_generate(script, plans=None, summary="Learned about"):
    """generate(prompts) answering each prompt from `script[question][turn]`.

    turn = number of observations already in the prompt for that question (the last turn
    repeats forever); plan prompts get plans[question] (or a default); summary prompts get
    `summary` plus the question and more text that the agent must cut."""
    plans = plans or {}

    def generate(prompts):
        generate.calls.append(list(prompts))
        outputs = []
        for prompt in prompts:
            question = re.findall(r"^Question: (.*)$", prompt, flags=re.MULTILINE)[-1]
            if prompt.endswith("Summary:"):
                outputs.append(f"{summary} {question}. Only the first sentence is kept.\nSecond line.")
            elif prompt.endswith("Plan:"):
                outputs.append(plans.get(question, "1. call search_kb\n2. give the final answer"))
            else:
                turn = prompt.split(f"Question: {question}")[-1].count("\nObservation:")
                responses = script[question]
                outputs.append(responses[min(turn, len(responses) - 1)])
        return outputs

    generate.calls = []
    return generate


# ---------------------------------------------------------------------------------------
# the protocol parser


@pytest.mark.parametrize(
    "text, kind, form",
    [
        ('{"tool": "calculator", "arguments": {"expression": "1+1"}}', "tool_call", "json"),
        ('  \n{"final_answer": "42"}\n ', "final", "json"),
        ('```json\n{"final_answer": 42}\n```', "final", "json"),
        ('```\n{"tool": "search_kb", "arguments": {"query": "Zorvex"}}\n```', "tool_call", "json"),
        ('```json\n{"final_answer": "cut before the closing fence"}', "final", "json"),
        ("Final answer: 42", "final", "final_answer_line"),
        ("final answer:   Marta Quiroga  ", "final", "final_answer_line"),
        ("", "format_error", None),
        ("   \n  ", "format_error", None),
        ('{"tool": "calculator", "arguments": {"expression": "1+', "format_error", None),  # truncated
        ('{"final_answer": "42"', "format_error", None),
        ('Sure, here you go: {"final_answer": "42"}', "format_error", None),  # prose before
        ('{"final_answer": "42"} I hope this helps!', "format_error", None),  # prose after
        ('{"final_answer": "1"}\n{"final_answer": "2"}', "format_error", None),  # two objects
        ("The answer is 42.", "format_error", None),
        ("Final answer: 42\nBecause 6 times 7.", "format_error", None),
        ("Final answer:", "format_error", None),
        ('{"final_answer": ""}', "format_error", None),
        ('{"final_answer": null}', "format_error", None),
        ('["calculator", "1+1"]', "format_error", None),
        ('{"tool": "calculator", "arguments": "1+1"}', "format_error", None),  # wrong argument type
        ('{"tool": 7, "arguments": {}}', "format_error", None),
        ('{"tool": "calculator"}', "format_error", None),
        ('{"tool": "calculator", "arguments": {}, "thought": "hm"}', "format_error", None),
        ('{"tool": "calculator", "arguments": {}, "final_answer": "3"}', "format_error", None),
        (None, "format_error", None),
    ],
)
def test_parse_action(text, kind, form):
    parsed = parse_action(text)
    assert parsed["kind"] == kind
    assert parsed["form"] == form
    assert (parsed["error"] is None) == (kind != "format_error")


def test_parse_action_keeps_unknown_tools_for_the_loop_to_reject():
    parsed = parse_action('{"tool": "weather", "arguments": {"city": "Paris"}}')
    assert parsed["kind"] == "tool_call" and parsed["tool"] == "weather"


def test_parse_action_turns_structured_answers_into_compact_json():
    parsed = parse_action('{"final_answer": {"name": "Ana", "age": 30}}')
    assert json.loads(parsed["final_answer"]) == {"name": "Ana", "age": 30}


# ---------------------------------------------------------------------------------------
# planners and memory helpers


def test_parse_plan_reads_numbered_steps_or_falls_back_to_lines():
    assert parse_plan("1. search_kb for Zorvex\n2) calculator: 2024 - 1987\n3. answer") == [
        "search_kb for Zorvex", "calculator: 2024 - 1987", "answer"]
    assert parse_plan("look it up\n\nthen answer") == ["look it up", "then answer"]
    assert parse_plan("") == []


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Calculate 12 * 7.", ["calculator"]),
        ("How many days are in 3 weeks?", ["calculator"]),
        ("When was Zorvex founded?", ["search_kb"]),
        ("Who founded the company?", ["search_kb"]),
        ("How many years passed between the founding of Zorvex and 2024?", ["search_kb", "calculator"]),
        ("Extract the fields name and email from: Name: Ana, Email: a@b.co", ["extract_fields"]),
        ("¿Cuándo se fundó Lumina?", ["search_kb"]),
        ("hello there", []),
    ],
)
def test_heuristic_plan(question, expected):
    assert heuristic_plan(question) == expected


def test_episode_retrieval_and_reuse_rules():
    trace = {"id": "t1", "question": "What is 3 + 5?", "final_answer": "8", "steps": []}
    episodes = [make_episode(trace)]
    # Case, punctuation and articles do not matter; numbers and operators do.
    assert find_reusable_episode(episodes, "what is 3 + 5") is not None
    assert find_reusable_episode(episodes, "What is 3 - 5?") is None
    assert find_reusable_episode(episodes, "What is 3 + 6?") is None
    hints = retrieve_episodes(episodes, "What is 3 - 5?", threshold=0.5)
    assert [episode["episode_id"] for _, episode in hints] == ["t1"]
    assert 0.5 <= hints[0][0] < 1.0
    assert retrieve_episodes(episodes, "Who founded Zorvex?", threshold=0.5) == []


def test_append_summary_caps_length_dropping_oldest():
    sentences = []
    for index in range(50):
        sentences = append_summary(sentences, f"Sentence number {index} says something.", max_chars=120)
    assert len(" ".join(sentences)) <= 120
    assert sentences[-1] == "Sentence number 49 says something."
    assert "Sentence number 0 says something." not in sentences
    assert append_summary(["a."], "", max_chars=120) == ["a."]


def test_render_agent_prompt_describes_tools_protocol_and_scratchpad():
    state = new_task_state()
    state["working_memory"] = [{"action": call("calculator", expression="2+2"), "observation": "4"}]
    state["plan"] = ["call calculator", "give the final answer"]
    prompt = render_agent_prompt(task("t", "What is 2 + 2?"), "tools_memory_heuristic_plan", state)
    for tool in ("calculator", "search_kb", "extract_fields"):
        assert f"- {tool}:" in prompt
    assert '"expression":{"maxLength"' in prompt  # the JSON Schema of the arguments
    assert '{"final_answer": "27"}' in prompt  # few-shot example of the protocol
    assert "Plan:\n1. call calculator\n2. give the final answer" in prompt
    assert prompt.endswith("Question: What is 2 + 2?\n" f"Action: {call('calculator', expression='2+2')}\n"
                           "Observation: 4\nAction:")
    direct = render_agent_prompt(task("t", "What is 2 + 2?"), "llm_only", new_task_state())
    assert direct.endswith("Question: What is 2 + 2?\nFinal answer:") and "search_kb" not in direct


# ---------------------------------------------------------------------------------------
# the loop


def test_tool_call_then_final_answer():
    generate = scripted_generate({"What is 6 * 7?": [call("calculator", expression="6 * 7"), final("42")]})
    [trace] = run_agent([task("t1", "What is 6 * 7?", answer="42")], generate, "tools", KB_ROWS, max_steps=5)
    assert trace["stopped_by"] == "final" and trace["final_answer"] == "42"
    assert trace["n_steps"] == 2 and [step["step"] for step in trace["steps"]] == [1, 2]
    first, second = trace["steps"]
    assert (first["tool"], first["tool_input"], first["tool_output"], first["error"]) == (
        "calculator", {"expression": "6 * 7"}, "42", None)
    assert "Observation: 42" in second["prompt"]  # the tool result reached the model
    assert second["parsed"]["kind"] == "final"
    assert set(trace) >= {"id", "category", "question", "gold_answer", "arm", "steps", "final_answer",
                          "reused_episode", "n_steps", "stopped_by"}
    assert set(first) == {"step", "prompt", "raw_output", "parsed", "tool", "tool_input", "tool_output", "error",
                          "memory_reads", "memory_writes", "latency_s"}
    assert all(step["latency_s"] >= 0 for step in trace["steps"])


def test_search_results_reach_the_model_as_title_and_text():
    generate = scripted_generate({"Who founded Zorvex?": [call("search_kb", query="Zorvex founder", k=1),
                                                          final("Marta Quiroga")]})
    [trace] = run_agent([task("t", "Who founded Zorvex?", "kb_lookup")], generate, "tools", KB_ROWS)
    assert trace["steps"][0]["tool_output"][0]["id"] == "kb-1"  # the trace keeps the full result
    assert "Observation: Zorvex: Zorvex was founded in 1987 by Marta Quiroga.\n" in trace["steps"][1]["prompt"]
    assert render_observation([]) == "no results"
    assert render_observation({"name": "Ana"}) == '{"name": "Ana"}'
    assert len(render_observation("x" * 5000)) == 600


def test_lockstep_batches_share_generate_calls():
    script = {
        "Q1?": [final("1")],
        "Q2?": [call("calculator", expression="1+1"), final("2")],
        "Q3?": [call("calculator", expression="1+2"), call("calculator", expression="3"), final("3")],
    }
    tasks = [task("a", "Q1?"), task("b", "Q2?"), task("c", "Q3?")]
    generate = scripted_generate(script)
    traces = run_agent(tasks, generate, "tools", KB_ROWS, max_steps=5, batch_size=3)
    assert [trace["id"] for trace in traces] == ["a", "b", "c"]
    assert [len(prompts) for prompts in generate.calls] == [3, 2, 1]  # finished tasks drop out
    assert [trace["final_answer"] for trace in traces] == ["1", "2", "3"]
    generate_small = scripted_generate(script)
    again = run_agent(tasks, generate_small, "tools", KB_ROWS, max_steps=5, batch_size=2)
    assert [len(prompts) for prompts in generate_small.calls] == [2, 1, 1, 1, 1]
    strip = lambda traces: [{**t, "latency_s": 0, "steps": [{**s, "latency_s": 0} for s in t["steps"]]} for t in traces]
    assert strip(again) == strip(traces)  # batching does not change what the agent does


def test_errors_become_observations_and_never_crash():
    question = "Try everything?"
    generate = scripted_generate({question: [
        call("weather", city="Paris"),  # hallucinated tool
        call("calculator", expression=12),  # fails the JSON Schema
        call("calculator", expression="1/0"),  # tool error
        "I think the answer is 4",  # format error
        final("4"),
    ]})
    [trace] = run_agent([task("t", question)], generate, "tools", KB_ROWS, max_steps=8)
    assert trace["stopped_by"] == "final" and trace["final_answer"] == "4"
    error_types = [step["error"]["type"] if step["error"] else None for step in trace["steps"]]
    assert error_types == ["unknown_tool", "invalid_arguments", "tool_error", "format_error", None]
    last_prompt = trace["steps"][-1]["prompt"]
    assert "error: unknown tool 'weather'" in last_prompt
    assert "error: invalid arguments for calculator" in last_prompt
    assert "division by zero" in last_prompt
    assert "format error" in last_prompt
    json.dumps(trace)  # traces go to JSONL as they are


def test_tool_exception_is_caught(monkeypatch):
    import lmlab.agents.tools as tools_module

    def broken_search(index, query, k=3):
        raise RuntimeError("index corrupted")

    monkeypatch.setattr(tools_module, "search_kb", broken_search)
    generate = scripted_generate({"Who?": [call("search_kb", query="Zorvex"), final("unknown")]})
    [trace] = run_agent([task("t", "Who?")], generate, "tools", KB_ROWS, max_steps=3)
    assert trace["steps"][0]["error"]["type"] == "tool_exception"
    assert trace["stopped_by"] == "final"


def test_step_budget_ends_a_runaway_loop():
    generate = scripted_generate({"Loop?": [call("calculator", expression="1+1")]})
    [trace] = run_agent([task("t", "Loop?")], generate, "tools", KB_ROWS, max_steps=4)
    assert trace["stopped_by"] == "budget" and trace["final_answer"] is None
    assert trace["n_steps"] == 4 and len(generate.calls) == 4


def test_malformed_output_stops_with_format_after_consecutive_errors():
    generate = scripted_generate({"Bad?": ['{"tool": "calc', "no json here"]})
    [trace] = run_agent([task("t", "Bad?")], generate, "tools", KB_ROWS, max_steps=10,
                        max_consecutive_format_errors=2)
    assert trace["stopped_by"] == "format" and trace["final_answer"] is None
    assert [step["parsed"]["kind"] for step in trace["steps"]] == ["format_error", "format_error"]


def test_invented_observation_is_cut_like_a_stop_sequence():
    output = call("calculator", expression="2+2") + "\nObservation: 5\nAction: " + final("5")
    generate = scripted_generate({"Add?": [output, "Action: " + final("4")]})
    [trace] = run_agent([task("t", "Add?")], generate, "tools", KB_ROWS, max_steps=3)
    assert trace["steps"][0]["tool_output"] == "4"
    assert trace["steps"][0]["raw_output"] == output  # the raw text is kept for the record
    assert trace["final_answer"] == "4"


def test_llm_only_answers_in_one_step():
    script = {"What is 6 * 7?": [" 42\nThis is because..."], "Empty?": ["   "],
              "Extract?": ['```json\n{\n  "name": "Ana",\n  "age": 30\n}\n```\nDone.'],
              "Tool?": [call("calculator", expression="1")]}
    generate = scripted_generate(script)
    tasks = [task("a", "What is 6 * 7?"), task("b", "Empty?"), task("c", "Extract?"), task("d", "Tool?")]
    traces = run_agent(tasks, generate, "llm_only", KB_ROWS)
    assert len(generate.calls) == 1 and generate.calls[0][0].endswith("Final answer:")
    assert traces[0]["final_answer"] == "42" and traces[0]["steps"][0]["parsed"]["form"] == "direct_line"
    assert traces[1]["stopped_by"] == "format" and traces[1]["final_answer"] is None
    assert json.loads(traces[2]["final_answer"]) == {"name": "Ana", "age": 30}
    assert traces[3]["stopped_by"] == "format" and traces[3]["steps"][0]["tool"] is None  # no tools here
    assert all(trace["n_steps"] == 1 for trace in traces)
    assert run_agent([], generate, "llm_only", KB_ROWS) == []


def test_episodic_memory_reuses_a_repeated_question():
    question = "When was Zorvex founded?"
    script = {
        question: [call("search_kb", query="Zorvex founded"), final("1987")],
        "What is 2 + 2?": [final("4")],
        "When was Zorvex founded": ["should never be asked"],
    }
    tasks = [
        task("t1", question, "kb_lookup", "1987"),
        task("t2", "What is 2 + 2?", answer="4"),
        task("t3", "when was Zorvex founded", "kb_lookup", "1987", repeat_of="t1"),
    ]
    generate = scripted_generate(script)
    traces = run_agent(tasks, generate, "tools_memory", KB_ROWS, max_steps=4, batch_size=2)
    repeat = traces[2]
    assert repeat["reused_episode"] is True and repeat["final_answer"] == "1987"
    assert repeat["stopped_by"] == "final" and repeat["n_steps"] == 1
    [read] = repeat["steps"][0]["memory_reads"]
    assert read["episode_id"] == "t1" and read["score"] == 1.0
    assert all("when was Zorvex founded" not in prompt for prompts in generate.calls for prompt in prompts)
    assert traces[0]["steps"][-1]["memory_writes"] == [{"kind": "episodic", "episode_id": "t1"}]
    json.dumps(traces)
    # Without episodic memory the same tasks are all answered by the model.
    plain = run_agent(tasks[:2] + [{**tasks[2], "question": question}],
                      scripted_generate(script), "tools", KB_ROWS, max_steps=4, batch_size=2)
    assert not any(trace["reused_episode"] for trace in plain)


def test_repeat_in_the_same_batch_is_not_reused_and_failures_are_not_stored():
    question = "What is 9 * 9?"
    tasks = [task("a", "Fail?"), task("b", question), task("c", question), task("d", "Fail?")]
    script = {question: [final("81")], "Fail?": ["garbage"]}
    traces = run_agent(tasks, scripted_generate(script), "tools_memory", KB_ROWS, batch_size=3,
                       max_consecutive_format_errors=1)
    assert [trace["reused_episode"] for trace in traces] == [False, False, False, False]


def test_episodic_hints_appear_in_the_prompt_for_similar_questions():
    tasks = [task("a", "What is 3 + 5?"), task("b", "What is 3 - 5?")]
    script = {"What is 3 + 5?": [final("8")], "What is 3 - 5?": [final("-2")]}
    traces = run_agent(tasks, scripted_generate(script), "tools_memory", KB_ROWS, batch_size=1)
    second = traces[1]
    assert not second["reused_episode"]
    assert "Earlier similar questions" in second["steps"][0]["prompt"]
    assert [read["episode_id"] for read in second["steps"][0]["memory_reads"]] == ["a"]


def test_summary_memory_is_written_in_one_batched_call_and_read_later():
    tasks = [task("a", "Q one"), task("b", "Q two"), task("c", "Q three")]
    script = {"Q one": [final("1")], "Q two": [final("2")], "Q three": [final("3")]}
    generate = scripted_generate(script, summary="Remember")
    traces = run_agent(tasks, generate, "tools_summary_memory", KB_ROWS, batch_size=2)
    summary_calls = [prompts for prompts in generate.calls if prompts[0].endswith("Summary:")]
    assert [len(prompts) for prompts in summary_calls] == [2, 1]
    assert traces[0]["steps"][-1]["memory_writes"] == [{"kind": "summary", "text": "Remember Q one."}]
    third_prompt = traces[2]["steps"][0]["prompt"]
    assert "Notes from earlier tasks: Remember Q one. Remember Q two.\n" in third_prompt
    assert traces[2]["steps"][0]["memory_reads"] == [{"kind": "summary", "chars": len("Remember Q one. Remember Q two.")}]
    assert "Notes from earlier tasks" not in traces[0]["steps"][0]["prompt"]
    assert all(trace["summary_latency_s"] >= 0 for trace in traces)
    assert not any(trace["reused_episode"] for trace in traces)


def test_llm_planning_writes_a_plan_and_replans_once_after_a_failed_call():
    question = "How long is the Orbital river in meters?"
    script = {question: [
        call("search_kb", query="Orbital river", k="2"),  # invalid -> re-plan
        call("calculator", expression="412 *"),  # fails again -> no second re-plan
        call("calculator", expression="412 * 1000"),
        final("412000"),
    ]}
    plans = {question: "1. search_kb for the river\n2. calculator to convert\n3. answer"}
    generate = scripted_generate(script, plans=plans)
    [trace] = run_agent([task("t", question, "multi_step")], generate, "tools_memory_planning", KB_ROWS, max_steps=6)
    kinds = [step["parsed"]["kind"] for step in trace["steps"]]
    assert kinds == ["plan", "tool_call", "replan", "tool_call", "tool_call", "final"]
    assert trace["plan"] == ["search_kb for the river", "calculator to convert", "answer"]
    assert trace["replanned"] is True
    assert "Plan:\n1. search_kb for the river" in trace["steps"][1]["prompt"]
    assert "The last tool call failed" in trace["steps"][2]["prompt"]
    assert trace["final_answer"] == "412000" and trace["stopped_by"] == "final"
    json.dumps(trace)


def test_heuristic_plan_arm_puts_the_keyword_plan_in_the_prompt_without_extra_calls():
    question = "Calculate 12 * 7."
    generate = scripted_generate({question: [call("calculator", expression="12 * 7"), final("84")]})
    [trace] = run_agent([task("t", question)], generate, "tools_memory_heuristic_plan", KB_ROWS)
    assert trace["plan"] == ["call calculator", "give the final answer"]
    assert len(generate.calls) == 2
    assert "Plan:\n1. call calculator\n2. give the final answer" in trace["steps"][0]["prompt"]


def test_run_agent_rejects_bad_configuration():
    generate = scripted_generate({"Q?": [final("1")]})
    with pytest.raises(ValueError):
        run_agent([task("t", "Q?")], generate, "no_such_arm", KB_ROWS)
    with pytest.raises(ValueError):
        run_agent([task("t", "Q?")], generate, "tools", KB_ROWS, max_steps=0)
    with pytest.raises(ValueError):
        run_agent([task("t", "Q?")], lambda prompts: [], "tools", KB_ROWS)


def test_arms_are_flag_dicts():
    assert {"llm_only", "tools", "tools_memory", "tools_memory_planning"} <= set(ARMS)
    for name, arm in ARMS.items():
        assert arm["name"] == name
        assert arm["memory"] in ("none", "episodic", "summary")
        assert arm["planner"] in ("none", "llm", "heuristic")


# ---------------------------------------------------------------------------------------
# fuzz: whatever the model writes, the loop ends cleanly

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
TOOL_CALLS = st.builds(
    lambda tool, arguments: json.dumps({"tool": tool, "arguments": arguments}),
    st.sampled_from(["calculator", "search_kb", "extract_fields", "weather", ""]),
    st.dictionaries(st.sampled_from(["expression", "query", "k", "text", "fields", "x"]), JSON_VALUES, max_size=3),
)
MODEL_OUTPUTS = st.one_of(
    st.text(max_size=60),
    TOOL_CALLS,
    JSON_VALUES.map(json.dumps),
    st.builds(lambda value: json.dumps({"final_answer": value}), JSON_VALUES),
    st.builds(lambda call, tail: call + tail, TOOL_CALLS, st.sampled_from(["", "\nObservation: 3", " ok", "```"])),
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MODEL_OUTPUTS, min_size=1, max_size=8), st.sampled_from(sorted(ARMS)))
def test_loop_survives_arbitrary_model_output(outputs, arm):
    counter = {"n": 0}

    def generate(prompts):
        answers = []
        for _ in prompts:
            answers.append(outputs[counter["n"] % len(outputs)])
            counter["n"] += 1
        return answers

    tasks = [task("a", "What is 2 + 2?"), task("b", "When was Zorvex founded?", "kb_lookup"),
             task("c", "What is 2 + 2?")]
    traces = run_agent(tasks, generate, arm, KB_ROWS, max_steps=3, batch_size=2)
    assert [trace["id"] for trace in traces] == ["a", "b", "c"]
    for trace in traces:
        assert trace["stopped_by"] in ("final", "budget", "format")
        assert (trace["final_answer"] is not None) == (trace["stopped_by"] == "final")
        assert trace["n_steps"] == len(trace["steps"]) >= 1
        action_steps = [s for s in trace["steps"] if s["parsed"]["kind"] in ("tool_call", "final", "format_error")]
        assert len(action_steps) <= 3
        json.dumps(trace)
