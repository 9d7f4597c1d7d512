"""The agents stage's paper contract from the runs' traces: results/agents/summary.json,
the ablation, paired and per-category tables, the ablation figure, the findings and
headline sentences, memory reuse, and the paper's annotated example trace.

Every table is byte-identical across runs except the wall-clock columns (`*latency*`,
`*_s`), which are documented as not deterministic (`TIMING_NOTE`).
"""

import json
from pathlib import Path

import numpy as np

from lmlab.agents.intervals import arm_intervals, paired_comparisons
from lmlab.agents.loop import ARMS, render_observation
from lmlab.agents.metrics import TIMING_NOTE, agent_metrics
from lmlab.core.format import apply_style, fmt_ci, save_figure
from lmlab.core.io import read_jsonl, write_json, write_tsv
from lmlab.core.timing import read_results, split_timing, write_results

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
    "repeats_reused",
]
PAIRED_COLUMNS = [
    "comparison", "model", "family", "treatment", "baseline", "difference", "n", "clusters", "success_treatment",
    "success_baseline", "n10", "n01", "test", "p_value", "p_holm", "verdict", "mde",
]


def _ci_text(d, digits=3):
    return fmt_ci(d, digits) if d else ""


def mde_text(mde):
    return "no effect of any size could be detected at this n" if mde is None else f"{mde:.2f}"


def _verdict(row):
    """The sentence of lmlab.core.stats.decide's verdict: a direction only when the test
    rejects after Holm's correction in the row's family; a null with its detectable effect."""
    if row["verdict"] == "no effect detected":
        limit = ("no effect of any size could be detected with these tasks" if row["mde"] is None
                 else f"no effect larger than {row['mde']:.2f} in share of tasks solved was detectable")
        return f"{row['isolates']}: no effect detected ({row['family']} family; {limit})"
    direction = "raised" if row["verdict"] == "increased" else "lowered"
    return f"{row['isolates']} {direction} success ({row['family']} family, Holm p = {row['p_holm']:.3g})"


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
                f"(n10 = {row['n10']}, n01 = {row['n01']}, {row['test']} p = {row['p_value']:.3g}, "
                f"Holm p = {row['p_holm']:.3g}): {_verdict(row)}."
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
        verdict = {"increased": "tools helped", "decreased": "tools hurt"}.get(
            row["verdict"], f"no effect of tools was detected (detectable: {mde_text(row['mde'])})")
        return (f"For {model}, {verdict}: success {row['success_baseline']:.3f} without tools and "
                f"{row['success_treatment']:.3f} with them (difference {_ci_text(d)}, Holm-adjusted "
                f"{row['test']} p = {row['p_holm']:.3g}).")
    best = max(((model, arm, r["success"]["estimate"]) for model in models for arm, r in runs.get(model, {}).items()),
               key=lambda item: item[2], default=None)
    return "No arm ran." if best is None else f"Best success: {best[0]}/{best[1]} at {best[2]:.3f}."


def ablation_figure(runs, models, arms, out_png, out_pdf, confidence):
    """Success per arm (x) and model (bars) with bootstrap-interval error bars."""
    # matplotlib stays lazy: it is slow to import, and only this figure needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def summarise_agents(
    runs, tasks_path, summary_path, ablation_path, paired_path, categories_path, png_path, pdf_path,
    models, arms, timing_path=None, latency_path=None, skipped_models=None, n_resamples=2000, confidence=0.95, alpha=0.05, seed=0, settings=None,
    primary=(),
):
    """The stage's paper contract from the runs' traces and metrics.

    runs: [{model, arm, traces, metrics, timing}] (paths). Per-task rows are recomputed from
    the traces with agent_metrics (the same function the runs used), so the tables depend
    only on the traces; summary["timing"] (wall clock) goes to `timing_path` and the latency
    table to `latency_path`, apart from the results."""
    tasks = {task["id"]: task for task in read_jsonl(tasks_path)}
    # A repeated question is not new evidence about the arm: it is resampled with its original.
    clusters = {task_id: task.get("repeat_of") or task_id for task_id, task in tasks.items()}
    traces_by_run, rows_by_run, meta_by_run = {}, {}, {}
    for run in runs:
        key = (run["model"], run["arm"])
        traces = read_jsonl(run["traces"])
        run_tasks = [tasks[trace["id"]] for trace in traces]
        traces_by_run[key] = traces
        rows_by_run[key] = agent_metrics(traces, run_tasks)["per_task"]
        meta_by_run[key] = read_results(run["metrics"], run.get("timing"))
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
            result = arm_intervals(rows_by_run[key], clusters, n_resamples, confidence, seed)
            reuse = memory_reuse(traces_by_run[key], rows_by_run[key])
            result["memory"] = reuse
            results.setdefault(model, {})[arm] = result
            memory.setdefault(model, {})[arm] = reuse
            run_timing = meta_by_run[key].get("timing", {})
            timing[f"{model}/{arm}"] = {k: run_timing.get(k) for k in ("mean_latency_s", "generate_s", "load_s", "wall_s")}
            ablation_rows.append({
                "model": model, "arm": arm, "n_tasks": result["n_tasks"],
                **{name: _ci_text(result[name]) for name in ABLATION_COLUMNS[3:12]},
                "repeats_reused": f"{reuse['n_reused']}/{reuse['n_repeats']}",
            })
            category_rows.append({
                "model": model, "arm": arm,
                **{category: _ci_text(ci) for category, ci in result["success_by_category"].items()},
            })
    paired = paired_comparisons(rows_by_run, ran_models, clusters, primary, confidence, alpha)
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
        "primary": list(primary),
        "families": {family: sum(row["family"] == family for row in paired) for family in ("primary", "exploratory")},
        "timing": {"note": TIMING_NOTE, "runs": timing,
                   "total_wall_s": sum(t["wall_s"] or 0.0 for t in timing.values())},
    }
    categories = sorted({c for row in category_rows for c in row} - {"model", "arm"})
    write_tsv(ablation_path, ablation_rows, ABLATION_COLUMNS)
    write_tsv(paired_path, paired_rows, PAIRED_COLUMNS)
    write_tsv(categories_path, category_rows, ["model", "arm", *categories])
    ablation_figure(results, ran_models, ran_arms, png_path, pdf_path, confidence)
    if timing_path:
        write_results(summary_path, summary, timing_path)
        write_tsv(latency_path, [{"run": run, **{k: t[k] for k in ("mean_latency_s", "generate_s", "load_s", "wall_s")}}
                                 for run, t in timing.items()], ["run", "mean_latency_s", "generate_s", "load_s", "wall_s"])
    else:
        write_json(summary_path, split_timing(summary)[0])
    return summary
