"""The agents stage: task subset, the model behind `run_agent`, per-arm intervals, paired
arm comparisons, the ablation figure and the paper's annotated trace.

The agent loop and its metrics live in `lmlab.agents.loop` and `lmlab.agents.metrics`; this module
only wires them to a loaded model and turns traces into the stage's paper contract
(results/agents/summary.json, tables/, figures/).

Determinism: greedy decoding on CPU gives the same traces for the same config and seed, so
every table is byte-identical across runs except the wall-clock columns, which are named
`*latency*` / `*_s` and documented as not deterministic (`TIMING_NOTE`).
"""

import json
import logging
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from lmlab.agents.loop import ARMS, STOP_MARKERS, render_observation, run_agent
from lmlab.agents.metrics import agent_metrics
from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_json, write_jsonl, write_tsv

log = logging.getLogger(__name__)

# The prompt kinds of the agent loop, told apart by how the prompt ends.
PROMPT_KINDS = {"Action:": "action", "Plan:": "plan", "Final answer:": "final_answer", "Summary:": "summary"}
# (name, treatment arm, baseline arm, what it isolates). Difference = treatment - baseline.
COMPARISONS = (
    ("tools_vs_llm_only", "tools", "llm_only", "adding tools"),
    ("memory_vs_tools", "tools_memory", "tools", "adding episodic memory"),
    ("planning_vs_memory", "tools_memory_planning", "tools_memory", "adding LLM planning"),
    ("summary_vs_episodic_memory", "tools_summary_memory", "tools_memory", "summary instead of episodic memory"),
    (
        "heuristic_vs_llm_planning",
        "tools_memory_heuristic_plan",
        "tools_memory_planning",
        "heuristic instead of LLM planning",
    ),
)
TIMING_NOTE = (
    "Latency and seconds are wall-clock times of batched generate calls (each call's time split "
    "evenly over its prompts); they vary between runs and machines and are the only numbers "
    "of this stage that are not reproducible byte for byte."
)


# ---------------------------------------------------------------------------------------
# the task subset


def _largest_remainder(total, counts):
    """Integer quotas proportional to `counts` that sum to `total` (ties by key order)."""
    size = sum(counts.values())
    raw = {key: total * count / size for key, count in counts.items()}
    quotas = {key: int(value) for key, value in raw.items()}
    left = total - sum(quotas.values())
    for key in sorted(raw, key=lambda k: (-(raw[k] - quotas[k]), k))[:left]:
        quotas[key] += 1
    return quotas


def select_tasks(tasks, max_tasks=0, min_repeats=0, seed=0):
    """A seeded, category-stratified subset of the original tasks plus their repeats.

    `max_tasks` originals (0 or more than there are = all) are drawn per category in
    proportion to the file's category counts (largest remainder). First the originals of
    `min_repeats` seeded-chosen repeats are forced in, so episodic memory has something to
    reuse; every repeat whose original is kept is then run too (repeats are extra to
    `max_tasks`). Order: the kept originals that have a kept repeat first, then the other
    originals, both in file order, then the repeats in the order of their originals, so
    every repeat runs in a later lockstep batch than its original whenever there are at
    least `batch_size` originals. Returns (tasks, info)."""
    ids = [task["id"] for task in tasks]
    if len(set(ids)) != len(ids):
        raise InputError("agent_tasks: task ids are not unique")
    by_id = {task["id"]: task for task in tasks}
    originals = [task for task in tasks if not task.get("repeat_of")]
    repeats = [task for task in tasks if task.get("repeat_of")]
    for task in repeats:
        if task["repeat_of"] not in by_id or by_id[task["repeat_of"]].get("repeat_of"):
            raise InputError(f"agent_tasks: {task['id']}: repeat_of {task['repeat_of']!r} is not an original task")
    rng = random.Random(seed)
    if max_tasks <= 0 or max_tasks >= len(originals):
        kept_ids = {task["id"] for task in originals}
        forced = []
    else:
        repeat_originals = sorted({task["repeat_of"] for task in repeats})
        forced = sorted(rng.sample(repeat_originals, min(min_repeats, len(repeat_originals), max_tasks)))
        category_counts = Counter(task["category"] for task in originals)
        quotas = _largest_remainder(max_tasks, category_counts)
        forced_counts = Counter(by_id[task_id]["category"] for task_id in forced)
        # Forced originals count toward their category; a category they overfill gives its
        # excess back from the categories with the largest remaining need.
        need = {cat: max(0, quotas[cat] - forced_counts[cat]) for cat in quotas}
        excess = sum(max(0, forced_counts[cat] - quotas[cat]) for cat in quotas)
        for _ in range(excess):
            cat = max(sorted(need), key=lambda c: need[c])
            need[cat] -= 1
        kept_ids = set(forced)
        for cat in sorted(need):
            pool = [task["id"] for task in originals if task["category"] == cat and task["id"] not in kept_ids]
            kept_ids.update(rng.sample(pool, min(need[cat], len(pool))))
    kept_repeats = [task for task in repeats if task["repeat_of"] in kept_ids]
    with_repeat = {task["repeat_of"] for task in kept_repeats}
    first = [task for task in originals if task["id"] in with_repeat]
    rank = {task["id"]: index for index, task in enumerate(first)}
    ordered = (
        first
        + [task for task in originals if task["id"] in kept_ids and task["id"] not in with_repeat]
        # Repeats in the order of their originals: the k-th repeat's original sits at an index
        # <= k, so at least n_originals positions separate them.
        + sorted(kept_repeats, key=lambda task: rank[task["repeat_of"]])
    )
    info = {
        "n_tasks": len(ordered),
        "n_originals": len(kept_ids),
        "n_repeats": len(kept_repeats),
        "n_originals_available": len(originals),
        "n_repeats_available": len(repeats),
        "forced_originals": forced,
        "per_category": dict(sorted(Counter(task["category"] for task in ordered).items())),
        "per_lang": dict(sorted(Counter(task.get("lang") for task in ordered).items())),
        "ids": [task["id"] for task in ordered],
    }
    return ordered, info


def repeats_after_their_original(tasks, batch_size):
    """Repeat ids whose original runs in an earlier lockstep batch (reuse is possible)."""
    position = {task["id"]: index for index, task in enumerate(tasks)}
    return [
        task["id"]
        for index, task in enumerate(tasks)
        if task.get("repeat_of") in position and position[task["repeat_of"]] // batch_size < index // batch_size
    ]


# ---------------------------------------------------------------------------------------
# the model behind run_agent


def prompt_kind(prompt):
    stripped = prompt.rstrip()
    for suffix, kind in PROMPT_KINDS.items():
        if stripped.endswith(suffix):
            return kind
    return "action"


class _StopEarly:
    """The model as `generate_batched` sees it, with generation stopping at stop strings.

    `generate_batched` cuts its decoded text at `stop_strings` after generation; this proxy
    also hands `model.generate` a StopStringCriteria, so a sequence stops as soon as it has
    written a stop marker (finished rows are padded; whatever follows the marker is cut by
    `generate_batched`). The text is the same as without it, but a batch
    no longer decodes to `max_new_tokens` after every row has invented an 'Observation:'."""

    def __init__(self, model, tokenizer, stop_strings):
        from transformers import StopStringCriteria, StoppingCriteriaList

        self._model = model
        self._criteria = StoppingCriteriaList([StopStringCriteria(tokenizer, list(stop_strings))])

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, **kwargs):
        return self._model.generate(**kwargs, stopping_criteria=self._criteria)


def make_generate(model, tokenizer, max_new_tokens, batch_size, prompt_format="raw", max_input_tokens=None):
    """`generate(prompts) -> continuations` for run_agent over one loaded model, plus its counters.

    Greedy and batched through `generate_batched` (stop strings = the loop's
    Observation/Question markers). Prompts of one call are grouped by kind (action, plan,
    final_answer, summary), each with its own `max_new_tokens`. prompt_format "raw" continues
    the agent prompt as text (the few-shot transcript format the loop is written for);
    "chat" sends it as the user turn of the tokenizer's chat template."""
    from lmlab.models.generation import generate_batched

    stopping = _StopEarly(model, tokenizer, STOP_MARKERS)
    if prompt_format == "chat" and not tokenizer.chat_template:
        raise InputError("agents.prompt_format: chat needs a tokenizer with a chat template")
    counters = {"calls": 0, "prompts": 0, "tokens_in": 0, "tokens_out": 0, "truncated": 0, "generate_s": 0.0}
    counters["per_kind"] = {kind: 0 for kind in PROMPT_KINDS.values()}

    def wrap(prompt):
        if prompt_format == "raw":
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(prompts):
        outputs = [None] * len(prompts)
        groups = defaultdict(list)
        for index, prompt in enumerate(prompts):
            groups[prompt_kind(prompt)].append(index)
        start = time.perf_counter()
        for kind in sorted(groups):  # generate_batched runs under torch.inference_mode
            indices = groups[kind]
            results = generate_batched(
                stopping,
                tokenizer,
                [wrap(prompts[i]) for i in indices],
                max_new_tokens=max_new_tokens[kind],
                batch_size=batch_size,
                max_input_tokens=max_input_tokens,
                progress=False,
                stop_strings=list(STOP_MARKERS),
            )
            for index, result in zip(indices, results):
                outputs[index] = result["text"]
                counters["tokens_in"] += result["tokens_in"]
                counters["tokens_out"] += result["tokens_out"]
                counters["truncated"] += int(result["truncated"])
            counters["per_kind"][kind] += len(indices)
        counters["calls"] += 1
        counters["prompts"] += len(prompts)
        counters["generate_s"] += time.perf_counter() - start
        return outputs

    return generate, counters


# ---------------------------------------------------------------------------------------
# one run: a model and an arm

PER_TASK_COLUMNS = [
    "id", "category", "arm", "success", "contains_gold", "final_answer", "gold_answer", "n_steps", "n_calls",
    "n_gold_calls", "n_matched_calls", "n_arguments_correct", "n_invented_calls", "n_unnecessary_calls",
    "n_protocol_steps", "n_format_errors", "hallucination", "reused_episode", "stopped_by",
]


def per_task_rows(traces, rows):
    """agent_metrics' per-task rows with the final and gold answers beside them."""
    by_id = {trace["id"]: trace for trace in traces}
    return [
        {**row, "final_answer": by_id[row["id"]]["final_answer"], "gold_answer": by_id[row["id"]]["gold_answer"]}
        for row in rows
    ]


def run_arm(
    base_dir, adapter_dir, tasks_path, kb_path, traces_path, metrics_path, per_task_path,
    model_name, arm, max_tasks, min_repeats, max_steps, batch_size, max_new_tokens, prompt_format, seed,
    max_input_tokens=None, generate=None,
):
    """Run one arm of the agent on the task subset with one model; write traces and metrics.

    traces.jsonl: one record per task (every step: prompt, raw model output, parsed action,
    tool input and output, memory reads and writes, latency; the final answer), plus the
    model name. metrics.json: agent_metrics' aggregate of this arm (deterministic) and a
    separate `timing` block (wall clock, not deterministic). per_task TSV: the per-task
    metric rows without latency. `generate` replaces the model (tests: a scripted stand-in)."""
    if arm not in ARMS:
        raise InputError(f"config: agents.arms: unknown arm {arm!r}; known: {', '.join(ARMS)}")
    missing = set(PROMPT_KINDS.values()) - set(max_new_tokens)
    if missing:
        raise InputError(f"config: agents.max_new_tokens: missing {sorted(missing)}")
    tasks, selection = select_tasks(read_jsonl(tasks_path), max_tasks, min_repeats, seed)
    kb_rows = read_jsonl(kb_path)
    started = time.perf_counter()
    if generate is None:
        from lmlab.models.base import load_model, load_tokenizer, model_hash

        model = load_model(base_dir, adapter_dir or None)
        tokenizer = load_tokenizer(base_dir)
        generate, counters = make_generate(model, tokenizer, max_new_tokens, batch_size, prompt_format, max_input_tokens)
        identity = model_hash(base_dir, adapter_dir or None)
    else:
        counters, identity = {"generate_s": 0.0}, None
    load_s = time.perf_counter() - started
    log.info("%s/%s: %d tasks (%d repeats), max_steps %d", model_name, arm, len(tasks), selection["n_repeats"], max_steps)
    traces = run_agent(tasks, generate, arm, kb_rows, max_steps=max_steps, seed=seed, batch_size=batch_size)
    repeat_of = {task["id"]: task.get("repeat_of") for task in tasks}
    for trace in traces:
        trace["model"], trace["repeat_of"] = model_name, repeat_of[trace["id"]]
    metrics = agent_metrics(traces, tasks)
    aggregate = dict(metrics["per_arm"][arm])
    mean_latency_s = aggregate.pop("mean_latency_s")
    write_jsonl(traces_path, traces)
    write_tsv(per_task_path, per_task_rows(traces, metrics["per_task"]), PER_TASK_COLUMNS)
    write_json(
        metrics_path,
        {
            "model": model_name,
            "arm": arm,
            "arm_flags": ARMS[arm],
            "metrics": aggregate,
            "selection": selection,
            "repeats_after_original": repeats_after_their_original(tasks, batch_size),
            "settings": {
                "max_tasks": max_tasks, "min_repeats": min_repeats, "max_steps": max_steps,
                "batch_size": batch_size, "max_new_tokens": dict(max_new_tokens), "prompt_format": prompt_format,
                "max_input_tokens": max_input_tokens, "seed": seed, "decoding": "greedy",
                "stop_strings": list(STOP_MARKERS),
            },
            "model_hash": identity,
            "generation": {key: value for key, value in counters.items() if key != "generate_s"},
            "timing": {
                "note": TIMING_NOTE,
                "mean_latency_s": mean_latency_s,
                "generate_s": counters["generate_s"],
                "load_s": load_s,
                "wall_s": time.perf_counter() - started,
            },
        },
    )
    return metrics


# ---------------------------------------------------------------------------------------
# intervals

# Pooled rates of the ablation table: (column, numerator, denominator) of agent_metrics'
# per-task rows; rows without a denominator (e.g. no tool calls) do not count toward n.
RATIO_METRICS = (
    ("tool_precision", "n_matched_calls", "n_calls"),
    ("tool_recall", "n_matched_calls", "n_gold_calls"),
    ("argument_accuracy", "n_arguments_correct", "n_matched_calls"),
    ("invented_tool_rate", "n_invented_calls", "n_calls"),
    ("unnecessary_call_rate", "n_unnecessary_calls", "n_calls"),
    ("format_error_rate", "n_format_errors", "n_protocol_steps"),
)
# Tool precision, recall and argument accuracy leave out tasks answered from episodic
# memory (they made no tool decisions), as agent_metrics does.
TOOL_SCORED_ONLY = ("tool_precision", "tool_recall", "argument_accuracy")


def ratio_ci(numerators, denominators, n_resamples=2000, confidence=0.95, seed=0):
    """{estimate, low, high, n, denominator, method}: sum(num)/sum(den) with a percentile
    bootstrap over tasks (a task's calls stay together). None when sum(den) == 0."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.sum() == 0:
        return None
    estimate = float(num.sum() / den.sum())
    result = {"estimate": estimate, "low": estimate, "high": estimate, "n": int(keep.sum()),
              "denominator": int(den.sum()), "method": "constant"}
    if len(num) > 1 and not np.allclose(num / den, num[0] / den[0]):
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(num), size=(n_resamples, len(num)))
        resampled = num[index].sum(axis=1) / den[index].sum(axis=1)
        alpha = (1 - confidence) / 2
        low, high = np.quantile(resampled, [alpha, 1 - alpha])
        result.update(low=float(low), high=float(high), method="percentile")
    return result


def mean_ci(values, n_resamples=2000, confidence=0.95, seed=0):
    """bootstrap_ci of a mean (BCa, percentile fallback); None for an empty sample."""
    from lmlab.core.stats import bootstrap_ci

    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    return bootstrap_ci(values, np.mean, n_resamples=n_resamples, confidence=confidence, seed=seed)


def arm_intervals(rows, n_resamples=2000, confidence=0.95, seed=0):
    """Every rate of the ablation table for one model x arm, with 95% intervals and n."""
    tool_rows = [row for row in rows if row["tool_scored"]]
    out = {
        "n_tasks": len(rows),
        "success": mean_ci([row["success"] for row in rows], n_resamples, confidence, seed),
        "contains_gold": mean_ci([row["contains_gold"] for row in rows], n_resamples, confidence, seed),
        "hallucination_rate": mean_ci([row["hallucination"] for row in rows], n_resamples, confidence, seed),
        "mean_steps": mean_ci([row["n_steps"] for row in rows], n_resamples, confidence, seed),
    }
    for name, numerator, denominator in RATIO_METRICS:
        scored = tool_rows if name in TOOL_SCORED_ONLY else rows
        out[name] = ratio_ci([row[numerator] for row in scored], [row[denominator] for row in scored],
                             n_resamples, confidence, seed)
    out["stopped_by"] = {reason: sum(row["stopped_by"] == reason for row in rows) for reason in ("final", "budget", "format")}
    out["success_by_category"] = {
        category: mean_ci([row["success"] for row in rows if row["category"] == category], n_resamples, confidence, seed)
        for category in sorted({row["category"] for row in rows})
    }
    out["n_calls"] = sum(row["n_calls"] for row in rows)
    return out


# ---------------------------------------------------------------------------------------
# paired comparisons


def paired_comparisons(rows_by_run, models, n_resamples=2000, confidence=0.95, seed=0, alpha=0.05):
    """Paired success comparisons of arms on the same tasks, per model.

    rows_by_run: {(model, arm): per-task rows}. For each model and each entry of
    COMPARISONS whose two arms ran: the difference in success (treatment - baseline) with a
    paired bootstrap interval, the exact McNemar test (n10 = treatment right and baseline
    wrong, n01 = the reverse), and Holm-adjusted p over every comparison returned (one
    family). Tasks are matched by id; different task sets are an error."""
    from lmlab.core.stats import holm, mcnemar_exact, paired_bootstrap_diff

    out = []
    for model in models:
        for name, treatment, baseline, isolates in COMPARISONS:
            if (model, treatment) not in rows_by_run or (model, baseline) not in rows_by_run:
                continue
            a = {row["id"]: bool(row["success"]) for row in rows_by_run[(model, treatment)]}
            b = {row["id"]: bool(row["success"]) for row in rows_by_run[(model, baseline)]}
            if set(a) != set(b):
                raise ValueError(f"{model}: arms {treatment} and {baseline} ran on different tasks")
            ids = sorted(a)
            a_correct, b_correct = [a[i] for i in ids], [b[i] for i in ids]
            difference = paired_bootstrap_diff(
                [float(v) for v in a_correct], [float(v) for v in b_correct],
                n_resamples=n_resamples, confidence=confidence, seed=seed,
            )
            test = mcnemar_exact(a_correct, b_correct)
            out.append({
                "comparison": name, "model": model, "treatment": treatment, "baseline": baseline,
                "isolates": isolates, "n": len(ids),
                "success_treatment": sum(a_correct) / len(ids), "success_baseline": sum(b_correct) / len(ids),
                "difference": {key: difference[key] for key in ("estimate", "low", "high", "n", "method")},
                "n10": test["n10"], "n01": test["n01"], "p_mcnemar": test["p_value"],
            })
    if out:
        adjusted = holm([row["p_mcnemar"] for row in out], alpha)
        for row, p_holm, reject in zip(out, adjusted["adjusted"], adjusted["reject"]):
            row["p_holm"], row["significant"] = p_holm, reject
    return out


# ---------------------------------------------------------------------------------------
# memory reuse, the annotated trace


def memory_reuse(traces, rows):
    """How the repeats of one run went: answered from episodic memory, and correctly?"""
    success = {row["id"]: bool(row["success"]) for row in rows}
    repeats = [trace for trace in traces if trace.get("repeat_of")]
    reused = [trace for trace in repeats if trace["reused_episode"]]
    return {
        "n_repeats": len(repeats),
        "n_reused": len(reused),
        "n_reused_correct": sum(success[trace["id"]] for trace in reused),
        "n_repeats_correct": sum(success[trace["id"]] for trace in repeats),
        "n_originals_correct": sum(success.get(trace["repeat_of"], False) for trace in repeats),
    }


def _step_view(step):
    """One step of a trace as the paper shows it (plain strings; the template escapes them)."""
    parsed = step.get("parsed") or {}
    kind = parsed.get("kind")
    if step.get("tool") is not None:
        observation = (f"error: {step['error']['message']}" if step.get("error")
                       else render_observation(step["tool_output"]))
    elif kind == "format_error":
        observation = f"format error: {parsed.get('error')}"
    elif kind in ("plan", "replan"):
        observation = "plan: " + " / ".join(parsed.get("plan") or [])
    elif kind == "memory_reuse":
        observation = f"answer reused from episode {step['memory_reads'][0]['episode_id']}"
    else:
        observation = ""
    return {
        "step": step["step"],
        "kind": kind,
        "model_output": step.get("raw_output"),
        "tool": step.get("tool"),
        "tool_input": None if step.get("tool_input") is None else json.dumps(step["tool_input"], ensure_ascii=False, sort_keys=True),
        "observation": observation,
        "memory_reads": len(step.get("memory_reads") or []),
        "memory_writes": len(step.get("memory_writes") or []),
    }


EXAMPLE_RULE = (
    "the first multi_step task (in run order) that the tools arm answered correctly, for the first "
    "model in config order that has one; failing that, the first multi_step task of the tools arm"
)


def pick_example_trace(traces_by_run, rows_by_run, models):
    """The paper's annotated trace, chosen deterministically (EXAMPLE_RULE)."""
    candidates = [(model, "tools") for model in models if (model, "tools") in traces_by_run]
    if not candidates:
        tool_arms = [arm for arm in ARMS if ARMS[arm]["tools"]]
        candidates = [(model, arm) for model in models for arm in tool_arms if (model, arm) in traces_by_run][:1]
    for require_success in (True, False):
        for key in candidates:
            success = {row["id"]: bool(row["success"]) for row in rows_by_run[key]}
            for trace in traces_by_run[key]:
                if trace["category"] == "multi_step" and (success[trace["id"]] or not require_success):
                    return {
                        "model": key[0], "arm": key[1], "id": trace["id"], "category": trace["category"],
                        "question": trace["question"], "gold_answer": trace["gold_answer"],
                        "final_answer": trace["final_answer"], "success": success[trace["id"]],
                        "stopped_by": trace["stopped_by"], "first_prompt": trace["steps"][0]["prompt"] if trace["steps"] else None,
                        "steps": [_step_view(step) for step in trace["steps"]],
                        "rule": EXAMPLE_RULE, "succeeded_somewhere": require_success,
                    }
    return None


# ---------------------------------------------------------------------------------------
# the stage summary

ABLATION_COLUMNS = [
    "model", "arm", "n_tasks", "success", "tool_precision", "tool_recall", "argument_accuracy",
    "invented_tool_rate", "format_error_rate", "unnecessary_call_rate", "hallucination_rate", "mean_steps",
    "repeats_reused", "mean_latency_s",
]
PAIRED_COLUMNS = [
    "comparison", "model", "treatment", "baseline", "n", "success_treatment", "success_baseline",
    "difference", "n10", "n01", "p_mcnemar", "p_holm", "significant",
]


def _ci_text(d, digits=3):
    from lmlab.core.format import fmt_ci

    return fmt_ci(d, digits) if d else ""


def _verdict(row, confidence):
    difference = row["difference"]
    if row["significant"]:
        direction = "raised" if difference["estimate"] > 0 else "lowered"
        return f"{row['isolates']} {direction} success significantly"
    if difference["low"] <= 0 <= difference["high"]:
        return f"{row['isolates']} made no significant difference (the {confidence:.0%} interval contains 0)"
    return f"{row['isolates']} changed success, but not significantly after Holm's correction"


def findings(runs, paired, memory, models, confidence):
    """Plain sentences, every number from the results: the paper's caption text."""
    sentences = []
    for model in models:
        arms = runs.get(model, {})
        if not arms:
            continue
        listed = "; ".join(f"{arm} {_ci_text(result['success'])}" for arm, result in arms.items())
        sentences.append(f"{model}: task success {listed}.")
        if "tools" in arms:
            sentences.append(_tool_diagnosis(model, arms["tools"]))
        for row in (r for r in paired if r["model"] == model):
            sentences.append(
                f"{model}, {row['treatment']} minus {row['baseline']}: {_ci_text(row['difference'])} "
                f"(McNemar n10 = {row['n10']}, n01 = {row['n01']}, Holm p = {row['p_holm']:.3g}): "
                f"{_verdict(row, confidence)}."
            )
        for arm, reuse in memory.get(model, {}).items():
            if ARMS[arm]["memory"] == "episodic" and reuse["n_repeats"]:
                sentences.append(
                    f"{model}, {arm}: {reuse['n_reused']} of {reuse['n_repeats']} repeated questions were answered "
                    f"from episodic memory ({reuse['n_reused_correct']} correctly; the originals of the repeats were "
                    f"answered correctly {reuse['n_originals_correct']} times)."
                )
    return sentences


def _tool_diagnosis(model, result):
    """Where a tool arm's answers went wrong: calls, arguments, format."""
    def share(name):
        ci = result.get(name)
        return "n/a" if ci is None else f"{ci['estimate']:.2f}"

    return (f"In the tools arm, {model} made {result['n_calls']} tool calls: precision {share('tool_precision')}, "
            f"recall {share('tool_recall')}, argument accuracy {share('argument_accuracy')}, invented tools "
            f"{share('invented_tool_rate')}; {share('format_error_rate')} of its turns were unparseable.")


def _headline(runs, paired, models):
    """One sentence on the main question: do tools help this model?"""
    for model in models:
        arms = runs.get(model, {})
        if arms and all(result["success"]["estimate"] == 0 for result in arms.values()):
            n_tasks = next(iter(arms.values()))["n_tasks"]
            text = (f"{model} solved none of the {n_tasks} tasks in any of the {len(arms)} arms, so on this "
                    f"model no component (tools, memory, planning) can be said to help.")
            if "tools" in arms:
                text += " " + _tool_diagnosis(model, arms["tools"])
            return text
    for model in models:
        row = next((r for r in paired if r["model"] == model and r["comparison"] == "tools_vs_llm_only"), None)
        if row is None:
            continue
        d = row["difference"]
        if row["significant"] and d["estimate"] > 0:
            verdict = "tools helped"
        elif row["significant"]:
            verdict = "tools hurt"
        else:
            verdict = "tools did not make a significant difference"
        return (f"For {model}, {verdict}: success {row['success_baseline']:.3f} without tools and "
                f"{row['success_treatment']:.3f} with them (difference {_ci_text(d)}, Holm-adjusted "
                f"McNemar p = {row['p_holm']:.3g}).")
    best = max(((model, arm, r["success"]["estimate"]) for model in models for arm, r in runs.get(model, {}).items()),
               key=lambda item: item[2], default=None)
    return "No arm ran." if best is None else f"Best success: {best[0]}/{best[1]} at {best[2]:.3f}."


def ablation_figure(runs, models, arms, out_png, out_pdf, confidence):
    """Success per arm (x) and model (bars) with bootstrap-interval error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.core.format import apply_style

    apply_style(plt)
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(arms))
    for offset, model in enumerate(models):
        estimates, low_err, high_err = [], [], []
        for arm in arms:
            ci = runs.get(model, {}).get(arm, {}).get("success")
            estimates.append(ci["estimate"] if ci else np.nan)
            low_err.append(ci["estimate"] - ci["low"] if ci else 0.0)
            high_err.append(ci["high"] - ci["estimate"] if ci else 0.0)
        positions = x + (offset - (len(models) - 1) / 2) * width
        ax.bar(positions, estimates, width, yerr=[low_err, high_err], capsize=3, label=model)
        for position, estimate in zip(positions, estimates):
            if not np.isnan(estimate):  # a value label, so a zero bar is visible too
                ax.text(position, estimate + 0.01, f"{estimate:.2f}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels(arms, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_xlabel("agent arm")
    ax.set_ylabel(f"task success (share, {confidence:.0%} CI)")
    ax.legend(title="model", frameon=False)
    for path in (out_png, out_pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=150)
    fig.savefig(out_pdf)
    plt.close(fig)


def summarise_agents(
    runs, tasks_path, summary_path, ablation_path, paired_path, categories_path, png_path, pdf_path,
    models, arms, skipped_models=None, n_resamples=2000, confidence=0.95, alpha=0.05, seed=0, settings=None,
):
    """The stage's paper contract from the runs' traces and metrics.

    runs: [{model, arm, traces, metrics}] (paths). Per-task rows are recomputed from the
    traces with agent_metrics (the same function the runs used), so the tables depend
    only on the traces; `mean_latency_s` and summary["timing"] are wall clock."""
    tasks = {task["id"]: task for task in read_jsonl(tasks_path)}
    traces_by_run, rows_by_run, meta_by_run = {}, {}, {}
    for run in runs:
        from lmlab.core.io import read_json

        key = (run["model"], run["arm"])
        traces = read_jsonl(run["traces"])
        run_tasks = [tasks[trace["id"]] for trace in traces]
        traces_by_run[key] = traces
        rows_by_run[key] = agent_metrics(traces, run_tasks)["per_task"]
        meta_by_run[key] = read_json(run["metrics"])
    id_sets = {tuple(trace["id"] for trace in traces) for traces in traces_by_run.values()}
    if len(id_sets) > 1:
        raise ValueError("agent runs used different task subsets; every arm must run the same tasks")
    run_settings = {json.dumps(meta["settings"], sort_keys=True) for meta in meta_by_run.values()}
    if len(run_settings) > 1:
        raise ValueError("agent runs used different settings (seed, step budget, decoding); they must not")
    ran_models = [model for model in models if any((model, arm) in rows_by_run for arm in arms)]
    ran_arms = [arm for arm in arms if any((model, arm) in rows_by_run for model in models)]
    results, memory, ablation_rows, category_rows, timing = {}, {}, [], [], {}
    for model in ran_models:
        for arm in ran_arms:
            key = (model, arm)
            if key not in rows_by_run:
                continue
            result = arm_intervals(rows_by_run[key], n_resamples, confidence, seed)
            reuse = memory_reuse(traces_by_run[key], rows_by_run[key])
            result["memory"] = reuse
            results.setdefault(model, {})[arm] = result
            memory.setdefault(model, {})[arm] = reuse
            run_timing = meta_by_run[key]["timing"]
            timing[f"{model}/{arm}"] = {k: run_timing[k] for k in ("mean_latency_s", "generate_s", "load_s", "wall_s")}
            ablation_rows.append({
                "model": model, "arm": arm, "n_tasks": result["n_tasks"],
                **{name: _ci_text(result[name]) for name in ABLATION_COLUMNS[3:12]},
                "repeats_reused": f"{reuse['n_reused']}/{reuse['n_repeats']}",
                "mean_latency_s": run_timing["mean_latency_s"],
            })
            category_rows.append({
                "model": model, "arm": arm,
                **{category: _ci_text(ci) for category, ci in result["success_by_category"].items()},
            })
    paired = paired_comparisons(rows_by_run, ran_models, n_resamples, confidence, seed, alpha)
    paired_rows = [
        {**{k: row[k] for k in PAIRED_COLUMNS if k != "difference"}, "difference": _ci_text(row["difference"])}
        for row in paired
    ]
    first = meta_by_run[next(iter(meta_by_run))] if meta_by_run else {}
    summary = {
        "stage": "agents",
        "settings": {**first.get("settings", {}), **(settings or {})},
        "models": ran_models,
        "arms": ran_arms,
        "arm_flags": {arm: ARMS[arm] for arm in ran_arms},
        "skipped_models": dict(skipped_models or {}),
        "tasks": first.get("selection", {}),
        "repeats_after_original": len(first.get("repeats_after_original", [])),
        "runs": results,
        "paired": paired,
        "memory": memory,
        "findings": findings(results, paired, memory, ran_models, confidence),
        "headline": _headline(results, paired, ran_models),
        "example_trace": pick_example_trace(traces_by_run, rows_by_run, ran_models),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "alpha": alpha,
        "holm_family": len(paired),
        "timing": {"note": TIMING_NOTE, "runs": timing,
                   "total_wall_s": sum(t["wall_s"] for t in timing.values())},
    }
    categories = sorted({c for row in category_rows for c in row} - {"model", "arm"})
    write_tsv(ablation_path, ablation_rows, ABLATION_COLUMNS)
    write_tsv(paired_path, paired_rows, PAIRED_COLUMNS)
    write_tsv(categories_path, category_rows, ["model", "arm", *categories])
    ablation_figure(results, ran_models, ran_arms, png_path, pdf_path, confidence)
    write_json(summary_path, summary)
    return summary
