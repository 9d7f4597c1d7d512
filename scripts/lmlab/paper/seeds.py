"""The primary comparisons of every training seed side by side, and their spread across seeds.

Each seed's stage summaries carry item-level intervals and tests (lmlab.core.stats); they
cover the sampling of items, not the randomness of training. Running training and everything
downstream of it once per seed (config["seeds"]) measures the second: this module lines up
each declared primary comparison over the seeds and states mean, standard deviation and
range of its estimate, and how many seeds reached each verdict.
"""

import statistics

from lmlab.core.format import apply_style, fmt_ci, fmt_num, save_figure
from lmlab.core.io import read_json, write_json, write_tsv

SEED_COLUMNS = ["stage", "comparison", "metric", "seed", "estimate [interval], n", "p (Holm)", "verdict", "mde"]


def primary_comparisons(evaluation, agents):
    """[{stage, comparison, metric, estimate, low, high, n, p_holm, verdict, mde}] of one seed:
    the declared primary comparisons of the evaluation and agents summaries, in their order."""
    rows = []
    for c in (evaluation or {}).get("comparisons", []):
        if c.get("family") == "primary":
            rows.append({"stage": "evaluation", "comparison": f"{c['a']} − {c['b']}",
                         "metric": c.get("metric", "share correct"),
                         **{k: c.get(k) for k in ("estimate", "low", "high", "n", "p_holm", "verdict", "mde")}})
    for p in (agents or {}).get("paired", []):
        if p.get("family") == "primary":
            d = p.get("difference") or {}
            rows.append({"stage": "agents", "comparison": f"{p['model']}: {p['treatment']} − {p['baseline']}",
                         "metric": "share of tasks solved",
                         **{k: d.get(k) for k in ("estimate", "low", "high")},
                         **{k: p.get(k) for k in ("n", "p_holm", "verdict", "mde")}})
    return rows


def spread(estimates):
    """{n_seeds, mean, sd, min, max} of the estimates that exist (sd needs two seeds)."""
    values = [float(v) for v in estimates if v is not None]
    if not values:
        return {"n_seeds": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {"n_seeds": len(values), "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None, "min": min(values), "max": max(values)}


def seed_summary(seeds, evaluation_by_seed, agents_by_seed):
    """{seeds, reference_seed, comparisons: [{stage, comparison, metric, per_seed: [...],
    spread: {...}, verdicts: {verdict: seeds}}]} over the training seeds (the first is the
    reference seed whose item-level analyses the paper shows)."""
    per_seed = {s: primary_comparisons(evaluation_by_seed.get(s), agents_by_seed.get(s)) for s in seeds}
    keys = list(dict.fromkeys((r["stage"], r["comparison"], r["metric"]) for s in seeds for r in per_seed[s]))
    comparisons = []
    for stage, comparison, metric in keys:
        runs = [{"seed": s, **{k: v for k, v in r.items() if k not in ("stage", "comparison", "metric")}}
                for s in seeds for r in per_seed[s]
                if (r["stage"], r["comparison"], r["metric"]) == (stage, comparison, metric)]
        verdicts = {}
        for run in runs:
            verdicts[run["verdict"]] = verdicts.get(run["verdict"], 0) + 1
        comparisons.append({"stage": stage, "comparison": comparison, "metric": metric, "per_seed": runs,
                            "spread": spread(r["estimate"] for r in runs), "verdicts": verdicts,
                            "same_verdict": len(verdicts) == 1 and len(runs) == len(seeds)})
    return {"seeds": list(seeds), "n_seeds": len(seeds), "reference_seed": seeds[0], "comparisons": comparisons}


def seed_rows(summary):
    """The seeds table: per comparison, one row per seed, then the spread across seeds."""
    rows = []
    for c in summary["comparisons"]:
        keys = {"stage": c["stage"], "comparison": c["comparison"], "metric": c["metric"]}
        for r in c["per_seed"]:
            rows.append({**keys, "seed": str(r["seed"]), "estimate [interval], n": fmt_ci(r),
                         "p (Holm)": fmt_num(r["p_holm"]), "verdict": str(r["verdict"]), "mde": fmt_num(r["mde"])})
        sp = c["spread"]
        across = ("–" if sp["mean"] is None else
                  f"mean {fmt_num(sp['mean'])}, sd {fmt_num(sp['sd'])}, range [{fmt_num(sp['min'])}, "
                  f"{fmt_num(sp['max'])}], {sp['n_seeds']} seeds")
        rows.append({**keys, "seed": "across seeds", "estimate [interval], n": across, "p (Holm)": "",
                     "verdict": ", ".join(f"{v}: {k}" for v, k in c["verdicts"].items()), "mde": ""})
    return rows


def seed_figure(summary, out_png, out_pdf):
    """One panel row per primary comparison: each seed's estimate with its item-level interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    comparisons = summary["comparisons"]
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.5 * max(1, sum(len(c["per_seed"]) for c in comparisons))))
    labels, y = [], 0
    for c in comparisons:
        for r in c["per_seed"]:
            if r["estimate"] is not None:
                low, high = r["low"], r["high"]
                err = [[r["estimate"] - low], [high - r["estimate"]]] if low is not None and high is not None else None
                ax.errorbar([r["estimate"]], [y], xerr=err, fmt="o", color="#4C72B0", capsize=3)
            labels.append(f"{c['comparison']} (seed {r['seed']})")
            y += 1
    ax.axvline(0, color="#888", linewidth=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("difference in share (item-level interval per seed)")
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def write_seed_summary(seeds, evaluation_paths, agents_paths, out_summary, out_table, out_png, out_pdf):
    """Rule paper_seeds: the seeds' primary comparisons, table and figure."""
    summary = seed_summary(
        [str(s) for s in seeds],
        {str(s): read_json(p) for s, p in zip(seeds, evaluation_paths)},
        {str(s): read_json(p) for s, p in zip(seeds, agents_paths)},
    )
    write_json(out_summary, summary)
    write_tsv(out_table, seed_rows(summary), SEED_COLUMNS)
    seed_figure(summary, out_png, out_pdf)
    return summary
