"""A tool-using agent loop: JSON action protocol, memory, planning, lockstep batches.

The model is any batched, deterministic `generate(prompts: list[str]) -> list[str]`. Each
turn it answers with one JSON object, either a tool call {"tool": name, "arguments": {...}}
or {"final_answer": ...} (a single line "Final answer: ..." is accepted too). Everything
the model can get wrong (bad format, unknown tool, bad arguments, a failing tool) becomes
an observation in the next prompt and a counted error in the trace; a step budget and a
limit on consecutive format errors end runaway loops.

Memory, all plain data in `run_agent`:
- working memory: the current task's actions and observations (the scratchpad), in every
  tool arm, because a tool result is useless if the next prompt cannot see it;
- episodic memory: finished tasks {question, tool results, answer}; similar past questions
  (token-set Jaccard >= a threshold) are shown as hints, and a repeat whose normalised
  question equals a stored one reuses the stored answer without calling the model;
- summary memory: after each batch, one batched call asks for a one-sentence summary per
  task, appended to a running summary capped in characters (oldest sentences dropped).

Planning: "llm" asks for a numbered plan before acting (and once more after a failed tool
call); "heuristic" is the seed notebook's keyword planner; both put the plan in the prompt.
"""

import json
import re
import time

from lmlab.agents.tools import TOOL_SPECS, call_tool, make_tools, render_tool_output
from lmlab.core.text import fold

# One dict of flags per arm. memory: none | episodic | summary; planner: none | llm | heuristic.
ARMS = {
    "llm_only": {"name": "llm_only", "tools": False, "memory": "none", "planner": "none"},
    "tools": {"name": "tools", "tools": True, "memory": "none", "planner": "none"},
    "tools_memory": {"name": "tools_memory", "tools": True, "memory": "episodic", "planner": "none"},
    "tools_memory_planning": {"name": "tools_memory_planning", "tools": True, "memory": "episodic", "planner": "llm"},
    "tools_summary_memory": {"name": "tools_summary_memory", "tools": True, "memory": "summary", "planner": "none"},
    "tools_memory_heuristic_plan": {
        "name": "tools_memory_heuristic_plan", "tools": True, "memory": "episodic", "planner": "heuristic",
    },
}

# Generation has no stop sequences here, so a model may go on to invent the observation or
# the next question; cutting there is what an API's stop=["\nObservation:"] would do.
STOP_MARKERS = ("\nObservation:", "\nQuestion:")
EPISODE_HINT_THRESHOLD = 0.5  # token-set Jaccard for showing a past question as a hint
MAX_EPISODE_HINTS = 2
MAX_SUMMARY_CHARS = 600
MAX_SUMMARY_SENTENCE_CHARS = 200
MAX_PLAN_STEPS = 6
MAX_OBSERVATION_CHARS = 600  # three KB documents fit; a runaway output does not flood the prompt
# Function words that do not change what a question asks; everything else must match
# (in order, operators included) for a stored answer to be reused.
REUSE_IGNORED_WORDS = {"the", "a", "an", "please", "el", "la", "los", "las", "un", "una", "por", "favor"}


def resolve_arm(arm):
    """An arm given by name (key of ARMS) or as a flag dict with a 'name'."""
    if isinstance(arm, str):
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
        return ARMS[arm]
    missing = {"name", "tools", "memory", "planner"} - set(arm)
    if missing:
        raise ValueError(f"arm dict lacks {sorted(missing)}")
    return arm


# ---------------------------------------------------------------------------------------
# the action protocol

def _format_error(message):
    return {"kind": "format_error", "form": None, "tool": None, "arguments": None, "final_answer": None, "error": message}


def answer_text(value):
    """A final answer as text: strings as is, anything else (numbers, objects) as compact JSON."""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def strip_code_fence(text):
    """Inner text of a ```lang ... ``` block; an unclosed fence (output cut by the token
    limit) loses only its opening line."""
    text = text.strip()
    if not text.startswith("```"):
        return text
    closed = re.fullmatch(r"```[\w-]*[ \t]*\n?(.*?)\n?```", text, flags=re.DOTALL)
    if closed:
        return closed.group(1).strip()
    return re.sub(r"^```[\w-]*[ \t]*\n?", "", text).strip()


def parse_action(text):
    """Strict parse of one model turn.

    Returns {kind, form, tool, arguments, final_answer, error}: kind is tool_call, final or
    format_error; form says which accepted shape was used ("json" or "final_answer_line").
    Accepted: exactly one JSON object (optionally inside a code fence, with surrounding
    whitespace) with keys {tool, arguments} or {final_answer}; or a single line
    'Final answer: ...'. Prose before or after the JSON is a format error."""
    if not isinstance(text, str):
        return _format_error("output is not text")
    body = strip_code_fence(text)
    if not body:
        return _format_error("empty output")
    if body.startswith("{"):
        try:
            value, end = json.JSONDecoder().raw_decode(body)
        except json.JSONDecodeError as error:
            return _format_error(f"invalid JSON: {error.msg} at char {error.pos}")
        if body[end:].strip():
            return _format_error("text after the JSON object")
        if not isinstance(value, dict):
            return _format_error("the JSON must be an object")
        keys = set(value)
        if keys == {"final_answer"}:
            if value["final_answer"] is None or answer_text(value["final_answer"]) == "":
                return _format_error("final_answer is empty")
            return {"kind": "final", "form": "json", "tool": None, "arguments": None,
                    "final_answer": answer_text(value["final_answer"]), "error": None}
        if keys == {"tool", "arguments"}:
            if not isinstance(value["tool"], str) or not value["tool"].strip():
                return _format_error("'tool' must be a non-empty string")
            if not isinstance(value["arguments"], dict):
                return _format_error("'arguments' must be a JSON object")
            return {"kind": "tool_call", "form": "json", "tool": value["tool"].strip(),
                    "arguments": value["arguments"], "final_answer": None, "error": None}
        return _format_error(f"expected keys {{tool, arguments}} or {{final_answer}}, got {sorted(keys)}")
    line_match = re.fullmatch(r"final answer\s*:\s*(.*)", body, flags=re.IGNORECASE | re.DOTALL)
    if line_match:
        answer = line_match.group(1).strip()
        if "\n" in answer:
            return _format_error("text after the 'Final answer:' line")
        if not answer:
            return _format_error("final answer is empty")
        return {"kind": "final", "form": "final_answer_line", "tool": None, "arguments": None,
                "final_answer": answer, "error": None}
    if "{" in body:
        return _format_error("prose around the JSON object")
    return _format_error("no JSON action and no 'Final answer:' line")


def cut_at_stop_markers(text):
    """The model's turn up to the first invented 'Observation:'/'Question:' line."""
    cut = len(text)
    for marker in STOP_MARKERS:
        position = text.find(marker)
        if position != -1:
            cut = min(cut, position)
    return text[:cut]


def parse_model_turn(raw_output):
    """parse_action on one generation, after the stop markers and an echoed 'Action:' label
    (the scratchpad's own label, so not counted as prose) are removed."""
    text = cut_at_stop_markers(raw_output).strip()
    text = re.sub(r"^action\s*:\s*", "", text, flags=re.IGNORECASE)
    return parse_action(text)


def parse_direct_answer(raw_output):
    """llm_only: the prompt ends in 'Final answer:', so the continuation is the answer.

    A protocol-shaped final answer is taken as is; a JSON object (extraction answers) is
    the answer (form "direct_json"); otherwise the first non-empty line is the answer
    (form "direct_line"); a tool call or an empty output is a format error."""
    text = cut_at_stop_markers(raw_output).strip()
    parsed = parse_action(text)
    if parsed["kind"] == "final":
        return parsed
    if parsed["kind"] == "tool_call":
        return _format_error("tools are not available in this arm")
    body = strip_code_fence(text)
    if body.startswith("{"):
        # A (possibly pretty-printed) JSON object is the answer itself, e.g. for extraction.
        try:
            value, _ = json.JSONDecoder().raw_decode(body)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return {"kind": "final", "form": "direct_json", "tool": None, "arguments": None,
                    "final_answer": answer_text(value), "error": None}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return _format_error("empty output")
    answer = re.sub(r"^final answer\s*:\s*", "", lines[0], flags=re.IGNORECASE).strip()
    if not answer:
        return _format_error("final answer is empty")
    return {"kind": "final", "form": "direct_line", "tool": None, "arguments": None, "final_answer": answer, "error": None}


# ---------------------------------------------------------------------------------------
# planning

def parse_plan(text):
    """Numbered steps ('1. ...' or '2) ...') of a plan; without numbers, the non-empty lines."""
    text = cut_at_stop_markers(text or "")
    numbered = re.findall(r"^\s*\d+\s*[.)]\s*(.+?)\s*$", text, flags=re.MULTILINE)
    steps = numbered or [line.strip() for line in text.splitlines() if line.strip()]
    return [step[:200] for step in steps[:MAX_PLAN_STEPS]]


def heuristic_plan(question):
    """The seed notebook's keyword planner: an ordered list of tool names for a question.

    extract/fields -> extract_fields (alone: the text to extract from is full of names and
    numbers that would trigger the other rules); otherwise who/when/founded/... or a
    capitalised word that does not start a sentence -> search_kb, then calc words or
    digit-operator-digit -> calculator. Deliberately shallow: it is the baseline that the
    LLM planner is compared with (a person's name in a word problem sends it to search_kb)."""
    folded = fold(question)
    if re.search(r"\b(extract\w*|fields?|extrae\w*|campos?)\b", folded):
        return ["extract_fields"]
    plan = []
    words = question.split()
    # A capitalised word is entity-like unless it starts the question or a sentence.
    entity_like = any(
        re.match(r"[\"'(¿¡]*[A-ZÁÉÍÓÚÑ][a-záéíóúñü]", word) and not re.search(r"[.?!:]$", previous)
        for previous, word in zip(words, words[1:])
    )
    if entity_like or re.search(r"\b(who|when|where|which|founded|quien|cuando|donde|cual|fundad\w*|fundo)\b", folded):
        plan.append("search_kb")
    calculation_words = (r"\b(calculate|compute|how many|how much|how old|how long|sum|total|difference|average|"
                         r"area|percent\w*|calcula\w*|cuant[oa]s?|media|promedio|porcentaje)\b")
    if re.search(calculation_words, folded) or re.search(r"\d\s*[-+*/%^]\s*\d", folded):
        plan.append("calculator")
    return plan


# ---------------------------------------------------------------------------------------
# memory

def question_token_set(question):
    # Operators stay as tokens: "3 + 5" and "3 - 5" must not look identical.
    return set(re.findall(r"[^\W_]+|[-+*/%^=<>]", fold(question)))


def normalised_question(question):
    tokens = re.findall(r"[^\W_]+|[-+*/%^=<>]", fold(question))
    return tuple(token for token in tokens if token not in REUSE_IGNORED_WORDS)


def jaccard(left, right):
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def retrieve_episodes(episodes, question, threshold=EPISODE_HINT_THRESHOLD, limit=MAX_EPISODE_HINTS):
    """Past episodes whose question's token set has Jaccard >= threshold, best first (ties by id)."""
    tokens = question_token_set(question)
    scored = [(round(jaccard(tokens, episode["question_tokens"]), 6), episode) for episode in episodes]
    scored = [(score, episode) for score, episode in scored if score >= threshold]
    scored.sort(key=lambda pair: (-pair[0], pair[1]["episode_id"]))
    return scored[:limit]


def find_reusable_episode(episodes, question):
    """(episode, score) of the earliest stored episode asking the same question, or None.

    'Same' = equal after casefolding, accent folding, dropping punctuation and a few
    function words; numbers and operators must match in order, so near-miss arithmetic
    questions are never answered from memory."""
    key = normalised_question(question)
    if not key:
        return None
    for episode in episodes:
        if episode["question_key"] == key:
            return episode, round(jaccard(question_token_set(question), episode["question_tokens"]), 6)
    return None


def make_episode(trace):
    """An episodic-memory record of a finished trace: question, tool results, final answer."""
    tool_results = [
        {"tool": step["tool"], "output": step["tool_output"]} for step in trace["steps"]
        if step["tool"] is not None and step["error"] is None and step["tool_output"] is not None
    ]
    return {
        "episode_id": trace["id"],
        "question": trace["question"],
        "question_tokens": question_token_set(trace["question"]),
        "question_key": normalised_question(trace["question"]),
        "tool_results": tool_results,
        "final_answer": trace["final_answer"],
    }


def first_sentence(text, max_chars=MAX_SUMMARY_SENTENCE_CHARS):
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    return sentence[:max_chars].strip()


def append_summary(summary_sentences, sentence, max_chars=MAX_SUMMARY_CHARS):
    """New list of summary sentences with `sentence` appended, oldest dropped to fit max_chars."""
    sentences = list(summary_sentences) + ([sentence] if sentence else [])
    while sentences and len(" ".join(sentences)) > max_chars:
        sentences.pop(0)
    return sentences


# ---------------------------------------------------------------------------------------
# prompts

FEW_SHOT_EXAMPLE = (
    "Example:\n"
    "Question: What is 3 * (4 + 5)?\n"
    'Action: {"tool": "calculator", "arguments": {"expression": "3 * (4 + 5)"}}\n'
    "Observation: 27\n"
    'Action: {"final_answer": "27"}'
)


def render_tool_descriptions():
    lines = ["Tools:"]
    for spec in TOOL_SPECS.values():
        schema = json.dumps(spec["parameters"]["properties"], sort_keys=True, separators=(",", ":"))
        required = ",".join(spec["parameters"]["required"])
        lines.append(f"- {spec['name']}: {spec['description']} Arguments (JSON Schema): {schema}; required: {required}")
    return "\n".join(lines)


def new_task_state():
    """Per-task loop state; render_agent_prompt reads it, run_agent updates it."""
    return {
        "mode": "act",  # act | plan | replan
        "working_memory": [],  # [{"action": text, "observation": text}] of this task
        "plan": [],
        "episode_hints": [],  # [{"episode_id", "question", "answer", "score"}]
        "summary": "",
        "last_error": None,
        "replanned": False,
        "n_action_steps": 0,
        "consecutive_format_errors": 0,
    }


def render_agent_prompt(task, arm, state):
    """The full text prompt of the next model turn of one task."""
    arm = resolve_arm(arm)
    question = task["question"].strip()
    if not arm["tools"]:
        return (
            "Answer the question with a short answer on one line.\n"
            "Question: What is 2 + 3?\nFinal answer: 5\n\n"
            f"Question: {question}\nFinal answer:"
        )
    parts = [
        "You are an agent that answers questions with tools. Reply with exactly one JSON object "
        'and nothing else: {"tool": "<name>", "arguments": {...}} to call a tool, or '
        '{"final_answer": "<answer>"} when you know the answer.',
        render_tool_descriptions(),
        FEW_SHOT_EXAMPLE,
    ]
    if state.get("summary"):
        parts.append(f"Notes from earlier tasks: {state['summary']}")
    if state.get("episode_hints"):
        hints = [
            f"- {' '.join(hint['question'].split())[:200]} -> {hint['answer']} (similarity {hint['score']:.2f})"
            for hint in state["episode_hints"]
        ]
        parts.append("Earlier similar questions (their answers may not apply):\n" + "\n".join(hints))
    mode = state.get("mode", "act")
    if state.get("plan") and mode == "act":
        parts.append("Plan:\n" + "\n".join(f"{number}. {step}" for number, step in enumerate(state["plan"], 1)))
    transcript = [f"Question: {question}"]
    for entry in state.get("working_memory", []):
        transcript.append(f"Action: {entry['action']}\nObservation: {entry['observation']}")
    if mode in ("plan", "replan"):
        if mode == "replan" and state.get("last_error"):
            transcript.append(f"The last tool call failed: {state['last_error']}")
        transcript.append(
            "Do not call a tool yet. Write a short numbered plan, one step per line, "
            "naming the tool each step uses.\nPlan:"
        )
    else:
        transcript.append("Action:")
    parts.append("\n".join(transcript))
    return "\n\n".join(parts)


def render_observation(output, max_chars=MAX_OBSERVATION_CHARS):
    """A tool result as the model sees it. Search hits become 'Title: text' joined by ' | '
    (ids and scores are bookkeeping and cost prompt tokens); other outputs as in
    render_tool_output (numbers and strings as is, the rest compact JSON)."""
    if isinstance(output, list) and all(isinstance(hit, dict) and {"title", "text"} <= set(hit) for hit in output):
        text = " | ".join(f"{hit['title']}: {hit['text']}" for hit in output) or "no results"
        return text if len(text) <= max_chars else text[: max_chars - 3] + "..."
    return render_tool_output(output, max_chars)


def render_summary_prompt(trace):
    tool_results = [render_observation(step["tool_output"], 200) for step in trace["steps"]
                    if step["tool"] is not None and step["error"] is None and step["tool_output"] is not None]
    return (
        "Write one sentence that summarises this finished task and what was learned, for later tasks.\n"
        f"Question: {trace['question'].strip()}\n"
        f"Tool results: {'; '.join(tool_results) or 'none'}\n"
        f"Final answer: {trace['final_answer'] if trace['final_answer'] is not None else 'none'}\n"
        "Summary:"
    )


# ---------------------------------------------------------------------------------------
# the loop

def _timed_generate(generate, prompts):
    """Outputs of one batched call and the latency charged to each prompt.

    The wall time of the call (time.perf_counter) is divided evenly over the prompts of
    the batch: a batched call has no per-prompt time, and the even split keeps the sum
    equal to the time actually spent."""
    start = time.perf_counter()
    outputs = generate(prompts)
    elapsed = time.perf_counter() - start
    if len(outputs) != len(prompts) or not all(isinstance(output, str) for output in outputs):
        raise ValueError(f"generate returned {len(outputs)} outputs for {len(prompts)} prompts, or a non-string")
    return list(outputs), elapsed / len(prompts)


def _new_step(number, prompt, raw_output, parsed, latency_s):
    return {"step": number, "prompt": prompt, "raw_output": raw_output, "parsed": parsed, "tool": None,
            "tool_input": None, "tool_output": None, "error": None, "memory_reads": [],
            "memory_writes": [], "latency_s": latency_s}


def _new_trace(task, arm, seed):
    return {
        "id": task["id"], "lang": task.get("lang"), "category": task["category"], "question": task["question"],
        "gold_answer": task.get("answer"), "gold_calls": task.get("gold_calls", []), "arm": arm["name"],
        "seed": seed, "plan": [], "replanned": False, "steps": [], "final_answer": None,
        "reused_episode": False, "n_steps": 0, "stopped_by": None, "latency_s": 0.0, "summary_latency_s": 0.0,
    }


def _memory_reads(state, arm):
    if arm["memory"] == "episodic":
        return [{"kind": "episodic", "episode_id": hint["episode_id"], "score": hint["score"]}
                for hint in state["episode_hints"]]
    if arm["memory"] == "summary":
        return [{"kind": "summary", "chars": len(state["summary"])}] if state["summary"] else []
    return []


def _apply_action(trace, state, step, parsed, tools, arm, max_steps, max_consecutive_format_errors):
    """Carry out one parsed action: run the tool or accept the answer; update state and trace."""
    state["n_action_steps"] += 1
    if parsed["kind"] == "final":
        trace["final_answer"], trace["stopped_by"] = parsed["final_answer"], "final"
        return
    if parsed["kind"] == "tool_call":
        state["consecutive_format_errors"] = 0
        result = call_tool(tools, parsed["tool"], parsed["arguments"])
        step.update(tool=parsed["tool"], tool_input=parsed["arguments"], tool_output=result["output"], error=result["error"])
        action = json.dumps({"tool": parsed["tool"], "arguments": parsed["arguments"]}, ensure_ascii=False)
        if result["error"] is None:
            observation = render_observation(result["output"])
        else:
            observation = f"error: {result['error']['message']}"
            state["last_error"] = result["error"]["message"]
            # One re-plan after the first failed tool call, LLM planner only.
            if arm["planner"] == "llm" and not state["replanned"]:
                state["mode"], state["replanned"], trace["replanned"] = "replan", True, True
        state["working_memory"].append({"action": action, "observation": observation})
    else:
        state["consecutive_format_errors"] += 1
        step["error"] = {"type": "format_error", "message": parsed["error"]}
        state["working_memory"].append({
            "action": cut_at_stop_markers(step["raw_output"]).strip()[:200] or "(empty)",
            "observation": f"format error: {parsed['error']}. Reply with exactly one JSON object.",
        })
        if state["consecutive_format_errors"] >= max_consecutive_format_errors:
            trace["stopped_by"] = "format"
            return
    if state["n_action_steps"] >= max_steps:
        trace["stopped_by"] = "budget"


def run_agent(tasks, generate, arm, kb_rows, max_steps=6, seed=0, batch_size=8, max_consecutive_format_errors=2):
    """One trace per task (in task order) for one arm.

    tasks: agent_tasks.jsonl rows; generate: batched deterministic text generator;
    arm: name in ARMS or a flag dict; kb_rows: kb.jsonl rows for search_kb.
    max_steps bounds action turns per task (plan turns are extra, at most two); a task
    also stops after `max_consecutive_format_errors` unparseable turns in a row.
    Tasks run in lockstep batches of `batch_size` in file order: each round, every
    unfinished task of the batch gets its next turn from one `generate` call. Episodic
    and summary memory are written after each batch, so a repeat sees an earlier batch's
    episode but not one from its own batch. `seed` is recorded in the traces; the loop
    itself draws no random numbers (determinism comes from `generate`)."""
    arm = resolve_arm(arm)
    if max_steps < 1 or batch_size < 1 or max_consecutive_format_errors < 1:
        raise ValueError("max_steps, batch_size and max_consecutive_format_errors must be >= 1")
    for task in tasks:
        missing = {"id", "category", "question"} - set(task)
        if missing:
            raise ValueError(f"task {task.get('id')!r} lacks {sorted(missing)}")
    tools = make_tools(kb_rows) if arm["tools"] else {}
    episodes, summary_sentences, traces = [], [], []
    for batch_start in range(0, len(tasks), batch_size):
        batch = tasks[batch_start: batch_start + batch_size]
        batch_traces = [_new_trace(task, arm, seed) for task in batch]
        states = [new_task_state() for _ in batch]
        for task, trace, state in zip(batch, batch_traces, states):
            _start_task(task, trace, state, arm, episodes, summary_sentences)
        if not arm["tools"]:
            _run_direct_answers(batch, batch_traces, states, generate, arm)
        else:
            _run_tool_rounds(batch, batch_traces, states, generate, arm, tools, max_steps, max_consecutive_format_errors)
        for trace in batch_traces:
            trace["n_steps"] = len(trace["steps"])
        if arm["memory"] == "episodic":
            for trace in batch_traces:
                if trace["stopped_by"] == "final" and not trace["reused_episode"]:
                    episodes.append(make_episode(trace))
                    trace["steps"][-1]["memory_writes"].append({"kind": "episodic", "episode_id": trace["id"]})
        if arm["memory"] == "summary":
            summary_sentences = _write_summaries(batch_traces, generate, summary_sentences)
        for trace in batch_traces:
            trace["latency_s"] = sum(step["latency_s"] for step in trace["steps"]) + trace["summary_latency_s"]
        traces.extend(batch_traces)
    return traces


def _start_task(task, trace, state, arm, episodes, summary_sentences):
    """Memory reads and the heuristic plan at the start of a task; finishes a reused repeat."""
    if arm["memory"] == "episodic":
        reusable = find_reusable_episode(episodes, task["question"])
        if reusable is not None:
            episode, score = reusable
            step = _new_step(1, None, None, {"kind": "memory_reuse", "form": None, "tool": None, "arguments": None,
                                             "final_answer": episode["final_answer"], "error": None}, 0.0)
            step["memory_reads"] = [{"kind": "episodic", "episode_id": episode["episode_id"], "score": score,
                                     "answer": episode["final_answer"], "tool_results": episode["tool_results"]}]
            trace["steps"].append(step)
            trace.update(final_answer=episode["final_answer"], stopped_by="final", reused_episode=True)
            return
        state["episode_hints"] = [
            {"episode_id": episode["episode_id"], "question": episode["question"],
             "answer": episode["final_answer"], "score": score}
            for score, episode in retrieve_episodes(episodes, task["question"])
        ]
    if arm["memory"] == "summary":
        state["summary"] = " ".join(summary_sentences)
    if arm["planner"] == "heuristic":
        state["plan"] = [f"call {tool}" for tool in heuristic_plan(task["question"])] + ["give the final answer"]
        trace["plan"] = list(state["plan"])
    if arm["planner"] == "llm":
        state["mode"] = "plan"


def _run_direct_answers(batch, traces, states, generate, arm):
    prompts = [render_agent_prompt(task, arm, state) for task, state in zip(batch, states)]
    outputs, latency_s = _timed_generate(generate, prompts)
    for prompt, output, trace in zip(prompts, outputs, traces):
        parsed = parse_direct_answer(output)
        step = _new_step(1, prompt, output, parsed, latency_s)
        if parsed["kind"] == "final":
            trace.update(final_answer=parsed["final_answer"], stopped_by="final")
        else:
            step["error"] = {"type": "format_error", "message": parsed["error"]}
            trace["stopped_by"] = "format"
        trace["steps"].append(step)


def _run_tool_rounds(batch, traces, states, generate, arm, tools, max_steps, max_consecutive_format_errors):
    while True:
        active = [index for index, trace in enumerate(traces) if trace["stopped_by"] is None]
        if not active:
            return
        prompts = [render_agent_prompt(batch[index], arm, states[index]) for index in active]
        outputs, latency_s = _timed_generate(generate, prompts)
        for index, prompt, output in zip(active, prompts, outputs):
            trace, state = traces[index], states[index]
            first_step = not trace["steps"]
            if state["mode"] in ("plan", "replan"):
                plan = parse_plan(output)
                step = _new_step(len(trace["steps"]) + 1, prompt, output,
                                 {"kind": state["mode"], "form": None, "tool": None, "arguments": None,
                                  "final_answer": None, "error": None, "plan": plan}, latency_s)
                state["plan"], trace["plan"], state["mode"] = plan, plan, "act"
            else:
                parsed = parse_model_turn(output)
                step = _new_step(len(trace["steps"]) + 1, prompt, output, parsed, latency_s)
                _apply_action(trace, state, step, parsed, tools, arm, max_steps, max_consecutive_format_errors)
            if first_step:
                step["memory_reads"] = _memory_reads(state, arm)
            trace["steps"].append(step)


def _write_summaries(traces, generate, summary_sentences):
    """One batched call: a one-sentence summary per finished task, appended in task order."""
    prompts = [render_summary_prompt(trace) for trace in traces]
    outputs, latency_s = _timed_generate(generate, prompts)
    for trace, output in zip(traces, outputs):
        sentence = first_sentence(output)
        summary_sentences = append_summary(summary_sentences, sentence)
        trace["summary_latency_s"] = latency_s
        if sentence and trace["steps"]:
            trace["steps"][-1]["memory_writes"].append({"kind": "summary", "text": sentence})
    return summary_sentences
