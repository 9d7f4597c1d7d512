"""Metrics over agent traces: per-task rows (for paired comparisons) and per-arm aggregates.

Definitions (one row per trace, so two arms can be compared task by task):
- success: the final answer matches gold after normalisation. A numeric gold is compared
  numerically, within half a unit of the gold's last decimal place (so gold "3.33" accepts
  3.3333) and a relative 1e-6; a prediction that is not itself a number counts if it
  holds exactly one number. A JSON-object gold is compared as parsed dicts (same keys;
  values numerically or as normalised text). Other answers: equal normalised token strings
  (casefolded, accents folded, punctuation dropped). `contains_gold` is the lenient variant:
  the normalised gold appears inside the normalised answer.
- tool precision / recall: attempted calls vs gold_calls matched by tool name as multisets.
  A task answered from episodic memory made no tool decisions, so its tool metrics are
  None (left out) instead of a recall of 0.
- argument accuracy: of the matched calls, those whose arguments match a gold call of the
  same tool: calculator by value, search_kb by the share of gold query tokens present in
  the predicted query (>= 0.5), extract_fields by equal field sets. Pairing is greedy in
  gold order.
- invented-tool rate: calls naming a tool that does not exist, over all calls.
- unnecessary-call rate: calls to real tools beyond what the gold plan needs (per tool,
  predicted count minus gold count), over all calls; precision = 1 - invented - unnecessary.
- format-error rate: unparseable turns over protocol turns (plan and memory-reuse steps
  are not protocol turns).
- hallucination (kb_lookup and multi_step tasks with a final answer): the answer asserts a
  value absent from the question and every successful tool output (and, for a reused
  episode, that episode's tool results). Asserted values: numbers, YYYY-MM-DD dates,
  capitalised words that are not function words, and every content word of a short
  (<= 3 tokens) lowercase answer. A surface check: a paraphrased or derived value that
  is right but not present verbatim also counts, so it bounds hallucination from above.
- latency: the trace's summed per-step shares of batched generate calls (wall clock,
  not deterministic).
Aggregates pool counts over tasks (micro averages); a rate with no denominator is None.
"""

import json
import math
import re
from collections import Counter

from lmlab.agents.tools import TOOL_NAMES, tokenize
from lmlab.core.expression import ExpressionError, evaluate_expression
from lmlab.core.text import fold

HALLUCINATION_CATEGORIES = ("kb_lookup", "multi_step")
PROTOCOL_KINDS = ("tool_call", "final", "format_error")
SEARCH_QUERY_MIN_OVERLAP = 0.5
NUMBER_REL_TOL = 1e-6
FUNCTION_WORDS = {
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "their", "there", "this", "to", "was", "were", "which", "with", "answer",
    "final", "al", "con", "de", "del", "el", "en", "es", "fue", "la", "las", "lo", "los", "para", "por", "que",
    "se", "su", "un", "una", "y", "respuesta",
}
NUMBER_IN_TEXT = r"(?<![\w.,-])-?\d+(?:[.,]\d+)*"
DATE_IN_TEXT = r"\b\d{4}-\d{2}-\d{2}\b"
# How every latency and seconds number of the stage must be read (traces, metrics, tables).
TIMING_NOTE = (
    "Latency and seconds are wall-clock times of batched generate calls (each call's time split "
    "evenly over its prompts); they vary between runs and machines and are the only numbers "
    "of this stage that are not reproducible byte for byte."
)


# ---------------------------------------------------------------------------------------
# answers

def parse_number(text):
    """The number a whole string denotes, or None: '42', '-3.5', '1,234.5', '3,5' (decimal comma)."""
    text = text.strip()
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    elif re.fullmatch(r"-?\d+,\d{1,2}", text):
        text = text.replace(",", ".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text):
        return None
    return float(text)


def numbers_in(text):
    """Numbers written in a text (dates removed first, so 2024-05-01 is not three numbers)."""
    text = re.sub(DATE_IN_TEXT, " ", text)
    values = []
    for match in re.findall(NUMBER_IN_TEXT, text):
        value = parse_number(match)
        # '1,2,3' is a list, not one number: fall back to its comma-separated parts.
        parts = [value] if value is not None else [parse_number(part) for part in match.split(",")]
        values.extend(part for part in parts if part is not None)
    return values


def _decimal_places(text):
    match = re.fullmatch(r"-?[\d,]*\.(\d+)", text.strip())
    return len(match.group(1)) if match else 0


def numbers_close(predicted, gold, gold_decimals=0, rel_tol=NUMBER_REL_TOL):
    tolerance = max(0.5 * 10 ** -gold_decimals if gold_decimals else 0.0, rel_tol * abs(gold), 1e-9)
    return abs(predicted - gold) <= tolerance + 1e-12


def normalise_answer(text):
    return " ".join(tokenize(text))


def parse_json_object(text):
    """A dict from an answer that is a JSON object (code fences tolerated), else None."""
    body = text.strip()
    fenced = re.fullmatch(r"```[\w-]*\s*(.*?)\s*```", body, flags=re.DOTALL)
    body = fenced.group(1) if fenced else body
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_number(value)
    return None


def values_match(predicted, gold):
    """JSON values equal up to number formatting and text normalisation."""
    if gold is None or predicted is None:
        return gold is None and predicted is None
    if isinstance(gold, dict):
        return isinstance(predicted, dict) and set(predicted) == set(gold) and all(
            values_match(predicted[key], gold[key]) for key in gold)
    if isinstance(gold, list):
        return isinstance(predicted, list) and len(predicted) == len(gold) and all(
            values_match(p, g) for p, g in zip(predicted, gold))
    gold_number, predicted_number = _as_number(gold), _as_number(predicted)
    if gold_number is not None and predicted_number is not None:
        decimals = _decimal_places(gold) if isinstance(gold, str) else _decimal_places(repr(gold))
        return numbers_close(predicted_number, gold_number, decimals)
    return normalise_answer(str(predicted)) == normalise_answer(str(gold))


def answers_match(predicted, gold):
    """Task success: see the module docstring."""
    if predicted is None or gold is None:
        return False
    gold, predicted = str(gold), str(predicted)
    gold_object = parse_json_object(gold) if gold.strip().startswith("{") else None
    if gold_object is not None:
        predicted_object = parse_json_object(predicted)
        return predicted_object is not None and values_match(predicted_object, gold_object)
    gold_number = parse_number(gold)
    if gold_number is not None:
        predicted_number = parse_number(predicted)
        if predicted_number is None:
            found = numbers_in(predicted)
            predicted_number = found[0] if len(found) == 1 else None
        return predicted_number is not None and numbers_close(predicted_number, gold_number, _decimal_places(gold))
    return normalise_answer(predicted) == normalise_answer(gold) != ""


def answer_contains_gold(predicted, gold):
    """Lenient success: the gold (tokens in order, or its number) appears in the answer."""
    if predicted is None or gold is None:
        return False
    if answers_match(predicted, gold):
        return True
    gold, predicted = str(gold), str(predicted)
    gold_number = parse_number(gold)
    if gold_number is not None:
        return any(numbers_close(value, gold_number, _decimal_places(gold)) for value in numbers_in(predicted))
    gold_tokens, predicted_tokens = tokenize(gold), tokenize(predicted)
    width = len(gold_tokens)
    return width > 0 and any(predicted_tokens[i: i + width] == gold_tokens for i in range(len(predicted_tokens) - width + 1))


# ---------------------------------------------------------------------------------------
# tool calls

def attempted_calls(trace):
    """Every tool call the model emitted (also unknown tools and bad arguments)."""
    return [
        {"tool": step["tool"], "arguments": step["tool_input"]}
        for step in trace["steps"] if step["parsed"] and step["parsed"].get("kind") == "tool_call"
    ]


def _expression_value(expression):
    """The value the calculator tool would return for an expression, or None if it refuses."""
    try:
        return evaluate_expression(expression)
    except ExpressionError:
        return None


def call_arguments_match(tool, predicted_arguments, gold_arguments):
    if not isinstance(predicted_arguments, dict):
        return False
    if tool == "calculator":
        predicted_expression = predicted_arguments.get("expression")
        gold_value = _expression_value(gold_arguments.get("expression", ""))
        predicted_value = _expression_value(predicted_expression) if isinstance(predicted_expression, str) else None
        if gold_value is None or predicted_value is None:
            return False
        return math.isclose(predicted_value, gold_value, rel_tol=1e-9, abs_tol=1e-9)
    if tool == "search_kb":
        query = predicted_arguments.get("query")
        gold_tokens = set(tokenize(gold_arguments.get("query", "")))
        if not isinstance(query, str) or not gold_tokens:
            return False
        return len(set(tokenize(query)) & gold_tokens) / len(gold_tokens) >= SEARCH_QUERY_MIN_OVERLAP
    if tool == "extract_fields":
        fields = predicted_arguments.get("fields")
        if not isinstance(fields, list) or not all(isinstance(field, str) for field in fields):
            return False
        return {fold(field).strip() for field in fields} == {
            fold(field).strip() for field in gold_arguments.get("fields", [])}
    return predicted_arguments == gold_arguments


def match_calls(predicted_calls, gold_calls):
    """Counts of a name-multiset match between predicted and gold calls."""
    predicted_counts = Counter(call["tool"] for call in predicted_calls)
    gold_counts = Counter(call["tool"] for call in gold_calls)
    n_matched = sum((predicted_counts & gold_counts).values())
    n_invented = sum(count for tool, count in predicted_counts.items() if tool not in TOOL_NAMES)
    n_unnecessary = sum(max(0, count - gold_counts[tool]) for tool, count in predicted_counts.items()
                        if tool in TOOL_NAMES)
    n_arguments_correct = 0
    used = set()
    for gold_call in gold_calls:  # greedy pairing, gold order
        for index, call in enumerate(predicted_calls):
            if index not in used and call["tool"] == gold_call["tool"] and call_arguments_match(
                    call["tool"], call["arguments"], gold_call.get("arguments", {})):
                used.add(index)
                n_arguments_correct += 1
                break
    return {"n_matched": n_matched, "n_invented": n_invented, "n_unnecessary": n_unnecessary,
            "n_arguments_correct": n_arguments_correct}


# ---------------------------------------------------------------------------------------
# hallucination

def _output_texts(output):
    """Leaf values of a tool output, without search scores and KB ids (their digits are
    retrieval bookkeeping, not evidence for an answer)."""
    if isinstance(output, dict):
        return [text for key, value in sorted(output.items()) if key not in ("score", "id")
                for text in _output_texts(value)]
    if isinstance(output, list):
        return [text for value in output for text in _output_texts(value)]
    return [] if output is None else [str(output)]


def evidence_text(trace):
    """The question, every successful tool output and a reused episode's tool results."""
    parts = [trace["question"]]
    for step in trace["steps"]:
        if step["tool"] is not None and step["error"] is None and step["tool_output"] is not None:
            parts.extend(_output_texts(step["tool_output"]))
        for read in step.get("memory_reads") or []:
            for result in read.get("tool_results", []):
                parts.extend(_output_texts(result.get("output") if isinstance(result, dict) else result))
    return "\n".join(parts)


def asserted_values(answer):
    """(numbers, dates, words) an answer asserts; see the module docstring."""
    dates = re.findall(DATE_IN_TEXT, answer)
    numbers = numbers_in(answer)
    without_numbers = re.sub(NUMBER_IN_TEXT, " ", re.sub(DATE_IN_TEXT, " ", answer))
    raw_words = re.findall(r"[^\W\d_]+", without_numbers)
    words = {fold(word) for word in raw_words if word[0].isupper() and fold(word) not in FUNCTION_WORDS}
    content = [fold(word) for word in raw_words if fold(word) not in FUNCTION_WORDS]
    if not words and not numbers and not dates and 0 < len(content) <= 3:
        words = set(content)
    return numbers, dates, words


def is_hallucination(trace):
    """True/False for kb_lookup and multi_step tasks with a final answer, else None."""
    if trace["category"] not in HALLUCINATION_CATEGORIES or trace["final_answer"] is None:
        return None
    evidence = evidence_text(trace)
    evidence_numbers = numbers_in(evidence) + [float(value) for value in re.findall(r"\d+", evidence)]
    evidence_tokens = set(tokenize(evidence))
    numbers, dates, words = asserted_values(str(trace["final_answer"]))
    if any(date not in evidence for date in dates):
        return True
    if any(not any(numbers_close(value, known) for known in evidence_numbers) for value in numbers):
        return True
    return any(word not in evidence_tokens for word in words)


# ---------------------------------------------------------------------------------------
# rows and aggregates

def _rate(numerator, denominator):
    return numerator / denominator if denominator else None


def score_trace(trace, gold_calls=None):
    """One per-task metrics row."""
    gold_calls = trace.get("gold_calls", []) if gold_calls is None else gold_calls
    calls = attempted_calls(trace)
    counts = match_calls(calls, gold_calls)
    parsed_kinds = [(step["parsed"] or {}).get("kind") for step in trace["steps"]]
    n_protocol_steps = sum(kind in PROTOCOL_KINDS for kind in parsed_kinds)
    n_format_errors = sum(kind == "format_error" for kind in parsed_kinds)
    reused = bool(trace.get("reused_episode"))
    # A reused answer made no tool decisions: leave tool metrics out rather than count recall 0.
    tool_scored = not reused
    return {
        "id": trace["id"], "arm": trace["arm"], "category": trace["category"],
        "success": answers_match(trace["final_answer"], trace["gold_answer"]),
        "contains_gold": answer_contains_gold(trace["final_answer"], trace["gold_answer"]),
        "n_calls": len(calls), "n_gold_calls": len(gold_calls), "n_matched_calls": counts["n_matched"],
        "tool_precision": _rate(counts["n_matched"], len(calls)) if tool_scored else None,
        "tool_recall": _rate(counts["n_matched"], len(gold_calls)) if tool_scored else None,
        "n_arguments_correct": counts["n_arguments_correct"],
        "argument_accuracy": _rate(counts["n_arguments_correct"], counts["n_matched"]) if tool_scored else None,
        "n_invented_calls": counts["n_invented"], "invented_tool_rate": _rate(counts["n_invented"], len(calls)),
        "n_unnecessary_calls": counts["n_unnecessary"],
        "unnecessary_call_rate": _rate(counts["n_unnecessary"], len(calls)),
        "n_protocol_steps": n_protocol_steps, "n_format_errors": n_format_errors,
        "format_error_rate": _rate(n_format_errors, n_protocol_steps),
        "n_steps": trace["n_steps"], "latency_s": trace.get("latency_s"),
        "hallucination": is_hallucination(trace),
        "reused_episode": reused, "stopped_by": trace["stopped_by"], "tool_scored": tool_scored,
    }


def score_traces(traces, tasks=None):
    """Per-task rows; gold_calls come from `tasks` (by id) when given, else from the traces."""
    gold_by_id = None if tasks is None else {task["id"]: task.get("gold_calls", []) for task in tasks}
    rows = []
    for trace in traces:
        if gold_by_id is not None and trace["id"] not in gold_by_id:
            raise ValueError(f"trace {trace['id']!r} has no task")
        rows.append(score_trace(trace, None if gold_by_id is None else gold_by_id[trace["id"]]))
    return rows


def aggregate_agent_metrics(rows):
    """{arm: aggregate dict}, pooled (micro) over the arm's rows."""
    aggregates = {}
    for arm in sorted({row["arm"] for row in rows}):
        arm_rows = [row for row in rows if row["arm"] == arm]
        tool_rows = [row for row in arm_rows if row["tool_scored"]]
        judged = [row["hallucination"] for row in arm_rows if row["hallucination"] is not None]
        n_calls = sum(row["n_calls"] for row in arm_rows)
        categories = sorted({row["category"] for row in arm_rows})
        aggregates[arm] = {
            "n_tasks": len(arm_rows),
            "success_rate": _rate(sum(row["success"] for row in arm_rows), len(arm_rows)),
            "contains_gold_rate": _rate(sum(row["contains_gold"] for row in arm_rows), len(arm_rows)),
            "tool_precision": _rate(sum(r["n_matched_calls"] for r in tool_rows), sum(r["n_calls"] for r in tool_rows)),
            "tool_recall": _rate(sum(r["n_matched_calls"] for r in tool_rows), sum(r["n_gold_calls"] for r in tool_rows)),
            "argument_accuracy": _rate(sum(r["n_arguments_correct"] for r in tool_rows),
                                       sum(r["n_matched_calls"] for r in tool_rows)),
            "invented_tool_rate": _rate(sum(row["n_invented_calls"] for row in arm_rows), n_calls),
            "unnecessary_call_rate": _rate(sum(row["n_unnecessary_calls"] for row in arm_rows), n_calls),
            "format_error_rate": _rate(sum(row["n_format_errors"] for row in arm_rows),
                                       sum(row["n_protocol_steps"] for row in arm_rows)),
            "mean_steps": _rate(sum(row["n_steps"] for row in arm_rows), len(arm_rows)),
            # Wall clock: None once the traces' timings were moved to their timing file.
            "mean_latency_s": (None if any(row["latency_s"] is None for row in arm_rows)
                               else _rate(sum(row["latency_s"] for row in arm_rows), len(arm_rows))),
            "hallucination_rate": _rate(sum(judged), len(judged)),
            "reuse_rate": _rate(sum(row["reused_episode"] for row in arm_rows), len(arm_rows)),
            "stopped_by": {reason: sum(row["stopped_by"] == reason for row in arm_rows)
                           for reason in ("final", "budget", "format")},
            "success_by_category": {
                category: _rate(sum(r["success"] for r in arm_rows if r["category"] == category),
                                sum(r["category"] == category for r in arm_rows))
                for category in categories
            },
        }
    return aggregates


def agent_metrics(traces, tasks=None):
    """{"per_task": rows, "per_arm": aggregates} for traces of one or more arms."""
    rows = score_traces(traces, tasks)
    return {"per_task": rows, "per_arm": aggregate_agent_metrics(rows)}
