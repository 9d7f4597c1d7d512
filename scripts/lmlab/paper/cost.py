"""What the run cost: Snakemake's per-job benchmark files aggregated per rule, plus the
throughput numbers the training and evaluation stages already recorded.

Snakemake writes one benchmark TSV per job (`benchmark:` directive) with the columns
s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out, mean_load, cpu_time (memory and
I/O in MiB, times in seconds; one row per repeat). A job of a rule with wildcards is named
`<rule>-<wildcards>.tsv`, so the rule is recovered by matching the file name against the
workflow's rule names (`alignment_rloo_rm` belongs to rule `alignment_rloo`: the longest rule name that
is the whole name or a prefix of it followed by '-' or '_').

Benchmarks are single measurements of one run on one machine: they carry no interval, and
their sum over jobs is the serial CPU-side cost, not the elapsed time of a parallel run.
"""

import math
from pathlib import Path

from lmlab.core.errors import InputError, input_error
from lmlab.core.format import apply_style, fmt_fixed, save_figure
from lmlab.core.io import read_tsv, write_json, write_tsv

BENCHMARK_COLUMNS = ("s", "max_rss", "cpu_time")
TRAINING_COLUMNS = ["run", "steps", "train tokens", "tokens/s", "steps/s", "achieved GFLOP/s", "achieved / probe", "peak memory (MiB)", "wall (s)"]
TOKENS_COLUMNS = ["cell", "items", "prompt tokens / item", "generated tokens / item", "generated tokens / s"]


def _number(text):
    """A benchmark cell as a float, or None for Snakemake's placeholders ('-', 'NA', '')."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def read_benchmark(path):
    """{s, max_rss, cpu_time, io_in, io_out, repeats} of one benchmark file (mean time over repeats,
    peak memory over repeats)."""
    rows = read_tsv(path)
    if not rows:
        raise input_error(path, 1, "rows", "benchmark file has no rows")
    missing = [c for c in BENCHMARK_COLUMNS if c not in rows[0]]
    if missing:
        raise input_error(path, 1, ", ".join(missing), "column missing from the benchmark header")

    def values(column):
        return [v for v in (_number(r.get(column)) for r in rows) if v is not None]

    def mean(column):
        vals = values(column)
        return sum(vals) / len(vals) if vals else None

    rss = values("max_rss")
    return {
        "s": mean("s"),
        "cpu_time": mean("cpu_time"),
        "max_rss": max(rss) if rss else None,
        "io_in": mean("io_in"),
        "io_out": mean("io_out"),
        "repeats": len(rows),
    }


def rule_of(job_name, rule_names):
    """The rule a benchmark file name belongs to (see the module docstring)."""
    best = None
    for rule in rule_names:
        if job_name == rule or (job_name.startswith(rule) and job_name[len(rule)] in "-_"):
            if best is None or len(rule) > len(best):
                best = rule
    if best is None:
        # Snakemake's own naming: the rule is the part before the first '-'.
        best = job_name.split("-", 1)[0]
    return best


def aggregate_benchmarks(paths, rule_names):
    """{rule: {jobs, wall_s, wall_s_max, cpu_s, max_rss_mib, io_in_mib, io_out_mib}}."""
    per_rule = {}
    for path in sorted(paths, key=str):
        name = Path(path).stem
        bench = read_benchmark(path)
        rule = rule_of(name, rule_names)
        agg = per_rule.setdefault(
            rule, {"jobs": 0, "wall_s": 0.0, "wall_s_max": 0.0, "cpu_s": 0.0, "max_rss_mib": None, "io_in_mib": 0.0, "io_out_mib": 0.0}
        )
        agg["jobs"] += 1
        agg["wall_s"] += bench["s"] or 0.0
        agg["wall_s_max"] = max(agg["wall_s_max"], bench["s"] or 0.0)
        agg["cpu_s"] += bench["cpu_time"] or 0.0
        agg["io_in_mib"] += bench["io_in"] or 0.0
        agg["io_out_mib"] += bench["io_out"] or 0.0
        if bench["max_rss"] is not None:
            agg["max_rss_mib"] = max(agg["max_rss_mib"] or 0.0, bench["max_rss"])
    return per_rule


def training_throughput(sft=None, alignment=None):
    """Throughput the training stages recorded: SFT per adapter (templates, then variants as
    <template>-<variant>) and alignment per method (tokens/s, achieved FLOP/s over the GEMM
    probe, both counted as in lmlab.core.cost)."""
    out = {}
    if sft:
        runs = [(name, sft["templates"][name]) for name in sft.get("template_order", sorted(sft.get("templates", {})))]
        runs += [(v["adapter"], v) for v in (sft.get("variants") or {}).values()]
        for name, t in runs:
            out[f"sft/{name}"] = {
                "stage": "sft",
                "run": name,
                "steps": t.get("global_step"),
                "tokens": t.get("tokens"),
                "tokens_per_s": t.get("tokens_per_s"),
                "achieved_flops_per_s": t.get("achieved_flops_per_s"),
                "achieved_over_probe": t.get("achieved_over_probe"),
                "peak_memory_mib": t.get("peak_memory_mib"),
                "train_s": t.get("train_step_s"),
                "steps_per_s": (t["global_step"] / t["train_step_s"]) if t.get("global_step") and t.get("train_step_s") else None,
                "wall_s": t.get("wall_s"),
                "device": t.get("device"),
                "qlora": t.get("qlora"),
            }
    if alignment:
        methods = dict(alignment.get("methods", {}))
        if alignment.get("reward_model"):
            methods = {"reward_model": alignment["reward_model"], **methods}
        for name, m in methods.items():
            steps, train_s = m.get("steps"), m.get("train_s")
            tokens = m.get("tokens_trained")
            out[f"alignment/{name}"] = {
                "stage": "alignment",
                "run": name,
                "steps": steps,
                # Trained tokens (a backward pass follows); forward-only ones count in the FLOP/s.
                "tokens": tokens,
                "tokens_per_s": (tokens / train_s) if tokens and train_s else None,
                "achieved_flops_per_s": m.get("achieved_flops_per_s"),
                "achieved_over_probe": m.get("achieved_over_probe"),
                "peak_memory_mib": m.get("peak_memory_mib"),
                "steps_per_s": (steps / train_s) if steps and train_s else None,
                "train_s": train_s,
                "wall_s": m.get("wall_s"),
            }
    return out


def tokens_per_example(evaluation=None):
    """Per evaluation cell: items, prompt and generated tokens per item, generated tokens/s."""
    out = {}
    for cell, c in sorted(((evaluation or {}).get("cells") or {}).items()):
        n = c.get("n") or 0
        if not n:
            continue
        gen_s = c.get("generate_s")
        out[cell] = {
            "n": n,
            "tokens_in_per_item": c["tokens_in"] / n if c.get("tokens_in") is not None else None,
            "tokens_out_per_item": c["tokens_out"] / n if c.get("tokens_out") is not None else None,
            "generated_tokens_per_s": c["tokens_out"] / gen_s if gen_s and c.get("tokens_out") is not None else None,
        }
    return out


def cost_figure(per_rule, order, out_png, out_pdf):
    """Horizontal bars: wall time per rule (seconds, summed over the rule's jobs)."""
    # matplotlib is imported on use: it is slow to import and only this function draws.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    rules = list(reversed(order))  # slowest on top
    fig, ax = plt.subplots(figsize=(5.5, 0.5 + 0.22 * max(1, len(rules))))
    ax.barh(range(len(rules)), [per_rule[r]["wall_s"] for r in rules], color="#4C72B0")
    ax.set_yticks(list(range(len(rules))), rules)
    ax.set_xlabel("wall time (s, summed over the rule's jobs)")
    ax.set_ylabel("rule")
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def cost_summary(bench_paths, rule_names, out_json, table_dir, fig_dir, sft=None, alignment=None, evaluation=None, not_benchmarked=()):
    """Write results/paper/cost/summary.json, tables/cost_*.tsv and figures/cost_wall_time.{png,pdf}."""
    if not bench_paths:
        raise InputError("config: cost_summary: no benchmark files given")
    per_rule = aggregate_benchmarks(bench_paths, rule_names)
    order = sorted(per_rule, key=lambda r: (-per_rule[r]["wall_s"], r))
    total_wall = sum(r["wall_s"] for r in per_rule.values())
    rss = {r: v["max_rss_mib"] for r, v in per_rule.items() if v["max_rss_mib"] is not None}
    peak_rule = max(rss, key=lambda r: (rss[r], r)) if rss else None
    for rule in per_rule.values():
        rule["share_of_wall"] = rule["wall_s"] / total_wall if total_wall else None
    training = training_throughput(sft, alignment)
    tokens = tokens_per_example(evaluation)
    summary = {
        "rules": per_rule,
        "rule_order": order,
        "n_rules": len(per_rule),
        "total": {
            "jobs": sum(r["jobs"] for r in per_rule.values()),
            "wall_s": total_wall,
            "cpu_s": sum(r["cpu_s"] for r in per_rule.values()),
            "max_rss_mib": rss.get(peak_rule),
            "max_rss_rule": peak_rule,
        },
        "slowest_rule": order[0],
        "not_benchmarked": list(not_benchmarked),
        "training": training,
        "tokens_per_example": tokens,
        "units": {"wall_s": "s", "cpu_s": "s", "max_rss_mib": "MiB (resident set size, peak)"},
    }
    table_dir, fig_dir = Path(table_dir), Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "rule": r,
            "jobs": str(per_rule[r]["jobs"]),
            "wall (s)": fmt_fixed(per_rule[r]["wall_s"], 1),
            "share of wall": fmt_fixed(100 * per_rule[r]["share_of_wall"], 1) + "%" if per_rule[r]["share_of_wall"] is not None else "",
            "slowest job (s)": fmt_fixed(per_rule[r]["wall_s_max"], 1),
            "CPU (s)": fmt_fixed(per_rule[r]["cpu_s"], 1),
            "peak RSS (MiB)": fmt_fixed(per_rule[r]["max_rss_mib"], 0),
        }
        for r in order
    ]
    rows.append(
        {
            "rule": "total",
            "jobs": str(summary["total"]["jobs"]),
            "wall (s)": fmt_fixed(total_wall, 1),
            "share of wall": "100.0%" if total_wall else "",
            "slowest job (s)": "",
            "CPU (s)": fmt_fixed(summary["total"]["cpu_s"], 1),
            "peak RSS (MiB)": fmt_fixed(summary["total"]["max_rss_mib"], 0),
        }
    )
    write_tsv(table_dir / "cost_rules.tsv", rows)
    # Every table is written, with its header only when the stage is absent from the config,
    # so the rule's outputs do not depend on which stages ran.
    write_tsv(
        table_dir / "cost_training.tsv",
        [
            {
                "run": key,
                "steps": "" if t["steps"] is None else str(t["steps"]),
                "train tokens": "" if t["tokens"] is None else str(t["tokens"]),
                "tokens/s": fmt_fixed(t["tokens_per_s"], 1),
                "steps/s": fmt_fixed(t.get("steps_per_s"), 2),
                "achieved GFLOP/s": fmt_fixed(t["achieved_flops_per_s"] / 1e9 if t["achieved_flops_per_s"] else None, 2),
                "achieved / probe": fmt_fixed(t["achieved_over_probe"], 3),
                "peak memory (MiB)": fmt_fixed(t["peak_memory_mib"], 0),
                "wall (s)": fmt_fixed(t["wall_s"], 1),
            }
            for key, t in training.items()
        ],
        columns=TRAINING_COLUMNS,
    )
    write_tsv(
        table_dir / "cost_tokens.tsv",
        [
            {
                "cell": cell,
                "items": str(t["n"]),
                "prompt tokens / item": fmt_fixed(t["tokens_in_per_item"], 1),
                "generated tokens / item": fmt_fixed(t["tokens_out_per_item"], 2),
                "generated tokens / s": fmt_fixed(t["generated_tokens_per_s"], 1),
            }
            for cell, t in tokens.items()
        ],
        columns=TOKENS_COLUMNS,
    )
    cost_figure(per_rule, order, fig_dir / "cost_wall_time.png", fig_dir / "cost_wall_time.pdf")
    write_json(out_json, summary)
    return summary
