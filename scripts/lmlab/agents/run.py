"""One run of the agents stage: a model and an arm on the task subset -> traces.jsonl,
metrics.json and the per-task TSV per arm (`run_arms`: one model load for all arms), with the loaded model wrapped as the loop's
batched, greedy `generate` (`make_generate`).

Determinism: greedy decoding on CPU gives the same traces for the same config and seed;
only the wall-clock numbers (`*latency*`, `*_s`) vary between runs (`TIMING_NOTE`), and they
are written apart, to the run's timing file (lmlab.core.timing).
"""

import logging
import time
from collections import defaultdict

from lmlab.agents.loop import ARMS, STOP_MARKERS, run_agent
from lmlab.agents.metrics import TIMING_NOTE, agent_metrics
from lmlab.agents.selection import repeats_after_their_original, select_tasks
from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_jsonl, write_tsv
from lmlab.core.timing import strip_timing, write_results
from lmlab.models.base import load_model, load_tokenizer, model_hash
from lmlab.models.generation import generate_batched, prompt_tokens_computed

log = logging.getLogger(__name__)

# The prompt kinds of the agent loop, told apart by how the prompt ends.
PROMPT_KINDS = {"Action:": "action", "Plan:": "plan", "Final answer:": "final_answer", "Summary:": "summary"}


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
        # transformers stays lazy: it pulls in torch, which a scripted run (tests) never needs.
        from transformers import StopStringCriteria, StoppingCriteriaList

        self._model = model
        self._criteria = StoppingCriteriaList([StopStringCriteria(tokenizer, list(stop_strings))])

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):  # the engine's prefix pass calls the model itself
        return self._model(*args, **kwargs)

    def generate(self, stopping_criteria=(), **kwargs):
        criteria = type(self._criteria)([*stopping_criteria, *self._criteria])
        return self._model.generate(**kwargs, stopping_criteria=criteria)


def make_generate(model, tokenizer, max_new_tokens, batch_size, prompt_format="raw", max_input_tokens=None,
                  share_prefix=True):
    """`generate(prompts) -> continuations` for run_agent over one loaded model, plus its counters.

    Greedy and batched through `generate_batched` (stop strings = the loop's
    Observation/Question markers). Prompts of one call are grouped by kind (action, plan,
    final_answer, summary), each with its own `max_new_tokens`. prompt_format "raw" continues
    the agent prompt as text (the few-shot transcript format the loop is written for);
    "chat" sends it as the user turn of the tokenizer's chat template. The prompts of a call
    share the loop's instructions and few-shot transcript: the engine reads that prefix once
    per arm, not once per turn (`share_prefix`, a prefix store kept between calls; counted in
    `prompt_tokens_computed` against `tokens_in`)."""
    stopping = _StopEarly(model, tokenizer, STOP_MARKERS)
    if prompt_format == "chat" and not tokenizer.chat_template:
        raise InputError("agents.prompt_format: chat needs a tokenizer with a chat template")
    counters = {"calls": 0, "prompts": 0, "tokens_in": 0, "prompt_tokens_computed": 0, "tokens_out": 0,
                "truncated": 0, "generate_s": 0.0}
    counters["per_kind"] = {kind: 0 for kind in PROMPT_KINDS.values()}

    def wrap(prompt):
        if prompt_format == "raw":
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    prefix_store = {}

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
                share_prefix=share_prefix,
                prefix_store=prefix_store,
            )
            counters["prompt_tokens_computed"] += prompt_tokens_computed(results)
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
# one job: a model and every arm, one load


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


def run_arms(
    base_dir, adapter_dir, tasks_path, kb_path, outputs, model_name, max_tasks, min_repeats, max_steps,
    batch_size, max_new_tokens, prompt_format, seed, max_input_tokens=None, generate=None,
):
    """Run every arm in `outputs` ({arm: {traces, metrics, per_task, timing}}) with one model,
    loaded once for all of them, on the same task subset; write each arm's files.

    traces.jsonl: one record per task (every step: prompt, raw model output, parsed action,
    tool input and output, memory reads and writes; the final answer), plus the model name.
    metrics.json: agent_metrics' aggregate of this arm (deterministic). timing: the wall
    clock (mean latency, per-task latency, generate/wall seconds; load_s is the one load the
    arms share), not deterministic. per_task TSV: the per-task metric rows without latency.
    `generate` replaces the model (tests: a scripted stand-in). Returns {arm: metrics}."""
    unknown = [arm for arm in outputs if arm not in ARMS]
    if unknown:
        raise InputError(f"config: agents.arms: unknown arm {unknown[0]!r}; known: {', '.join(ARMS)}")
    missing = set(PROMPT_KINDS.values()) - set(max_new_tokens)
    if missing:
        raise InputError(f"config: agents.max_new_tokens: missing {sorted(missing)}")
    tasks, selection = select_tasks(read_jsonl(tasks_path), max_tasks, min_repeats, seed)
    kb_rows = read_jsonl(kb_path)
    started = time.perf_counter()
    model = tokenizer = identity = None
    if generate is None:
        model = load_model(base_dir, adapter_dir or None)
        tokenizer = load_tokenizer(base_dir)
        identity = model_hash(base_dir, adapter_dir or None)
    load_s = time.perf_counter() - started
    results = {}
    for arm, paths in outputs.items():
        arm_started = time.perf_counter()
        if model is not None:
            arm_generate, counters = make_generate(
                model, tokenizer, max_new_tokens, batch_size, prompt_format, max_input_tokens
            )
        else:
            arm_generate, counters = generate, {"generate_s": 0.0}
        log.info("%s/%s: %d tasks (%d repeats), max_steps %d", model_name, arm, len(tasks), selection["n_repeats"],
                 max_steps)
        results[arm] = _run_one_arm(
            tasks, kb_rows, selection, arm_generate, counters, identity, paths, model_name, arm, max_tasks,
            min_repeats, max_steps, batch_size, max_new_tokens, prompt_format, seed, max_input_tokens, load_s,
            arm_started,
        )
    return results


def _run_one_arm(
    tasks, kb_rows, selection, generate, counters, identity, paths, model_name, arm, max_tasks, min_repeats,
    max_steps, batch_size, max_new_tokens, prompt_format, seed, max_input_tokens, load_s, started,
):
    traces = run_agent(tasks, generate, arm, kb_rows, max_steps=max_steps, seed=seed, batch_size=batch_size)
    repeat_of = {task["id"]: task.get("repeat_of") for task in tasks}
    for trace in traces:
        trace["model"], trace["repeat_of"] = model_name, repeat_of[trace["id"]]
    metrics = agent_metrics(traces, tasks)
    aggregate = dict(metrics["per_arm"][arm])
    mean_latency_s = aggregate.pop("mean_latency_s")
    latency_by_task = {trace["id"]: trace["latency_s"] for trace in traces}
    write_jsonl(paths["traces"], strip_timing(traces))
    write_tsv(paths["per_task"], per_task_rows(traces, metrics["per_task"]), PER_TASK_COLUMNS)
    write_results(
        paths["metrics"],
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
                "latency_s_by_task": latency_by_task,
            },
        },
        paths["timing"],
    )
    return metrics
