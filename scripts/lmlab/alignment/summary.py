"""The alignment stage's paper inputs: results/alignment/summary.json, tables and figures.

Reads only what the training and evaluation rules wrote (pairs_summary.json,
reward_accuracy.json, each model folder's train_log.tsv and training_config.json, and each
model's timing file), so every number in the section traces back to those files. Wall-clock
numbers go to timing/summary.json, so summary.json is byte-identical across reruns.
"""

import json
from pathlib import Path

from lmlab.core.format import apply_style, fmt_fixed, save_figure
from lmlab.core.io import read_json, read_tsv, write_tsv
from lmlab.core.timing import write_results
from lmlab.data.tasks import FAILURE_MODES

CURVE_KEYS = ("rewards/margins", "rewards/accuracies", "loss", "accuracy", "margin", "reward", "kl")


def read_log(model_dir):
    """train_log.tsv as a list of {column: float or None}."""
    rows = []
    for row in read_tsv(Path(model_dir) / "train_log.tsv"):
        rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return rows


def curve(rows, key):
    return [(int(r["step"]), r[key]) for r in rows if r.get(key) is not None]


def first_last(rows, key):
    points = curve(rows, key)
    if not points:
        return None
    tail = [v for _, v in points[-max(1, len(points) // 4) :]]
    return {"first": points[0][1], "last": points[-1][1], "last_quarter_mean": sum(tail) / len(tail),
            "steps": len(points)}


def method_record(name, model_dir, timing_path, keys):
    model_dir = Path(model_dir)
    cost = read_json(timing_path)
    config = read_json(model_dir / "training_config.json")
    rows = read_log(model_dir)
    return {
        "name": name,
        "adapter": str(model_dir),
        "config": config,
        "steps": cost["steps"],
        "wall_s": cost["wall_s"],
        "train_s": cost.get("train_s"),
        "train_cpu_s": cost.get("train_cpu_s"),
        "resumed_from": cost.get("resumed_from"),
        # What the policy's forward passes processed, and the FLOP/s that makes (lmlab.core.cost).
        "tokens_trained": cost.get("tokens_trained"),
        "tokens_forward_only": cost.get("tokens_forward_only"),
        "flops_formula": cost.get("flops_formula"),
        "achieved_flops_per_s": cost.get("achieved_flops_per_s"),
        "achieved_over_probe": cost.get("achieved_over_probe"),
        "peak_memory_mib": cost["peak_memory_bytes"] / 2**20 if cost.get("peak_memory_bytes") else None,
        "metrics": {k: first_last(rows, k) for k in keys if first_last(rows, k) is not None},
    }, rows


def _metric(record, key, field="last_quarter_mean"):
    m = record["metrics"].get(key)
    return None if m is None else m[field]


def reward_accuracy_rows(accuracy):
    rows = []
    groups = ["all", *[m for m in FAILURE_MODES if m in accuracy["heuristic"]]]
    for group in groups:
        h, l = accuracy["heuristic"][group], accuracy["learned"][group]
        rows.append(
            {
                "pairs": group,
                "n": h["n"],
                "heuristic": f"{fmt_fixed(h['estimate'])} [{fmt_fixed(h['low'])}, {fmt_fixed(h['high'])}]",
                "heuristic_ties": fmt_fixed(h["ties"], 2),
                "learned": f"{fmt_fixed(l['estimate'])} [{fmt_fixed(l['low'])}, {fmt_fixed(l['high'])}]",
                "learned_ties": fmt_fixed(l["ties"], 2),
            }
        )
    return rows


def pair_rows(pairs):
    rows = []
    for source in ("shipped", "onpolicy"):
        s = pairs[source]
        rows.append(
            {
                "source": source,
                "used": "yes" if s["used"] else "no",
                "pairs": s["pairs"],
                **{mode: s["per_failure_mode"].get(mode, 0) for mode in FAILURE_MODES},
            }
        )
    rows.append({"source": "training set", "used": "", "pairs": pairs["total_pairs"],
                 **{mode: pairs["per_failure_mode"].get(mode, 0) for mode in FAILURE_MODES}})
    return rows


def training_rows(records):
    rows = []
    for r in records:
        rows.append(
            {
                "method": r["name"],
                "steps": r["steps"],
                "loss (first -> last 1/4)": f"{fmt_fixed(_metric(r, 'loss', 'first'))} -> {fmt_fixed(_metric(r, 'loss'))}",
                "reward margin": fmt_fixed(_metric(r, "rewards/margins") if "rewards/margins" in r["metrics"]
                                      else _metric(r, "margin")),
                "reward accuracy": fmt_fixed(_metric(r, "rewards/accuracies") if "rewards/accuracies" in r["metrics"]
                                        else _metric(r, "accuracy")),
                "policy reward (first -> last 1/4)": (
                    f"{fmt_fixed(_metric(r, 'reward', 'first'))} -> {fmt_fixed(_metric(r, 'reward'))}"
                    if "reward" in r["metrics"] else ""
                ),
                "kl": fmt_fixed(_metric(r, "kl"), 4),
            }
        )
    return rows


def _pyplot():
    """matplotlib's pyplot on the Agg backend, in the project's figure style."""
    # Lazy: matplotlib is needed only to draw the figures.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    return plt


def _integer_steps(axes):
    from matplotlib.ticker import MaxNLocator  # lazy, as in _pyplot

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, figure_dir, name):
    save_figure(fig, Path(figure_dir) / f"{name}.png", Path(figure_dir) / f"{name}.pdf")


def preference_curves_figure(curves, rm_rows, figure_dir):
    """DPO/ORPO implicit reward margins and accuracies per step (+ reward-model accuracy)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.0))
    for name, rows in curves.items():
        for ax, key in zip(axes, ("rewards/margins", "rewards/accuracies")):
            points = curve(rows, key)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    points = curve(rm_rows, "accuracy")
    if points:
        axes[1].plot([p[0] for p in points], [p[1] for p in points], marker="s", markersize=3, linestyle="--",
                     color="grey", label="reward model")
    axes[0].set_title("Implicit reward margin (chosen - rejected)")
    axes[0].set_xlabel("optimizer step")
    axes[0].set_ylabel("margin (nats x beta)")
    axes[0].axhline(0, color="black", linewidth=0.6)
    axes[1].set_title("Pairs ranked correctly (training batch)")
    axes[1].set_xlabel("optimizer step")
    axes[1].set_ylabel("accuracy (fraction of pairs)")
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    axes[1].legend(loc="lower right", frameon=False, fontsize=7)
    _integer_steps(axes)
    fig.tight_layout()
    _save(fig, figure_dir, "alignment_pref_curves")
    plt.close(fig)


def rm_accuracy_figure(accuracy, figure_dir):
    """Pairwise accuracy on preferences_test per failure mode, heuristic vs learned, with CIs."""
    plt = _pyplot()
    groups = ["all", *[m for m in FAILURE_MODES if m in accuracy["heuristic"]]]
    fig, ax = plt.subplots(figsize=(8, 3.0))
    width = 0.38
    for i, scorer in enumerate(("heuristic", "learned")):
        est = [accuracy[scorer][g]["estimate"] for g in groups]
        low = [accuracy[scorer][g]["estimate"] - accuracy[scorer][g]["low"] for g in groups]
        high = [accuracy[scorer][g]["high"] - accuracy[scorer][g]["estimate"] for g in groups]
        xs = [x + (i - 0.5) * width for x in range(len(groups))]
        ax.bar(xs, est, width, yerr=[low, high], capsize=3, label=scorer)
    ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":", label="chance")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g}\n(n={accuracy['heuristic'][g]['n']})" for g in groups], fontsize=7)
    ax.set_ylabel("pairwise accuracy (ties = 0.5)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Reward models on held-out preference pairs (95% bootstrap intervals)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False, fontsize=7)
    fig.tight_layout()
    _save(fig, figure_dir, "alignment_rm_accuracy")
    plt.close(fig)


def rloo_figure(curves, figure_dir):
    """Mean reward per RLOO step for each arm (the arms' rewards have different scales)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4 * max(1, len(curves)), 2.8), squeeze=False)
    for ax, (name, rows) in zip(axes[0], curves.items()):
        points = curve(rows, "reward")
        stds = dict(curve(rows, "reward_std"))
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[stds.get(p[0], 0) for p in points],
                    marker="o", markersize=3, capsize=2)
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("mean reward of sampled completions (± sd)")
    _integer_steps(axes[0])
    fig.tight_layout()
    _save(fig, figure_dir, "alignment_rloo_reward")
    plt.close(fig)


def summarize_alignment(pairs_summary, reward_accuracy, reward_model, dpo_models, main_beta, orpo_model, rloo_models,
                        protocol, out_summary, table_dir, figure_dir, timings, out_timing):
    """`timings`: {model folder: its timing file (cost record)}; `out_timing`: where the
    summary's wall-clock fields go."""
    Path(table_dir).mkdir(parents=True, exist_ok=True)
    Path(figure_dir).mkdir(parents=True, exist_ok=True)
    pairs = read_json(pairs_summary)
    accuracy = read_json(reward_accuracy)

    rm_record, rm_rows = method_record("reward model", reward_model, timings[str(reward_model)], ("loss", "accuracy", "margin"))
    records, pref_curves, rloo_curves = [], {}, {}
    for beta, path in dpo_models.items():
        name = "dpo" if beta == main_beta else f"dpo (beta {beta})"
        record, rows = method_record(name, path, timings[str(path)], ("loss", "rewards/margins", "rewards/accuracies"))
        record["beta"] = float(beta)
        records.append(record)
        pref_curves[f"DPO beta {beta}"] = rows
    record, rows = method_record("orpo", orpo_model, timings[str(orpo_model)], ("loss", "rewards/margins", "rewards/accuracies", "nll_loss"))
    records.append(record)
    pref_curves["ORPO"] = rows
    for arm, path in rloo_models.items():
        record, rows = method_record(f"rloo_{arm}", path, timings[str(path)], ("loss", "reward", "reward_std", "kl"))
        records.append(record)
        rloo_curves[f"RLOO, {'learned reward model' if arm == 'rm' else 'verifiable reward'}"] = rows

    write_tsv(Path(table_dir) / "alignment_reward_accuracy.tsv", reward_accuracy_rows(accuracy["accuracy"]))
    write_tsv(Path(table_dir) / "alignment_pairs.tsv", pair_rows(pairs))
    write_tsv(Path(table_dir) / "alignment_training.tsv", training_rows([rm_record, *records]))
    preference_curves_figure(pref_curves, rm_rows, figure_dir)
    rm_accuracy_figure(accuracy["accuracy"], figure_dir)
    if rloo_curves:
        rloo_figure(rloo_curves, figure_dir)

    def ci(d):
        return {k: d[k] for k in ("estimate", "low", "high", "n")}

    main = next(r for r in records if r["name"] == "dpo")
    heur, learned = accuracy["accuracy"]["heuristic"]["all"], accuracy["accuracy"]["learned"]["all"]
    headline = (
        f"On held-out preference pairs a learned reward model ranked {100 * learned['estimate']:.1f}% "
        f"[{100 * learned['low']:.1f}, {100 * learned['high']:.1f}] correctly, against "
        f"{100 * heur['estimate']:.1f}% [{100 * heur['low']:.1f}, {100 * heur['high']:.1f}] for a heuristic scorer; "
        f"DPO, ORPO and RLOO were each trained for {main['steps']} steps from the same SFT adapter."
    )

    summary = {
        "protocol": protocol,
        "pairs": pairs,
        "reward_accuracy": {
            scorer: {group: {**ci(v), "ties": v["ties"]} for group, v in groups.items()}
            for scorer, groups in accuracy["accuracy"].items()
        },
        "learned_minus_heuristic": {**ci(accuracy["learned_minus_heuristic"]),
                                    **{k: accuracy["learned_minus_heuristic"][k]
                                       for k in ("test", "p_value", "p_holm", "family", "verdict", "mde")}},
        "reward_model": rm_record,
        "methods": {r["name"]: r for r in records},
        "models": {r["name"]: r["adapter"] for r in [rm_record, *records]},
        "train_seconds_total": sum(r["train_s"] or 0.0 for r in [rm_record, *records]),
        "failure_modes": [m for m in FAILURE_MODES if m in accuracy["accuracy"]["heuristic"]],
        "reward_model_test_pairs": accuracy["n_pairs"],
        "rloo_arms": list(rloo_models),
        "curves": {
            "dpo_margin": main["metrics"].get("rewards/margins"),
            "dpo_accuracy": main["metrics"].get("rewards/accuracies"),
        },
        "headline": headline,
    }
    write_results(out_summary, summary, out_timing)
    return json.loads(json.dumps(summary))
