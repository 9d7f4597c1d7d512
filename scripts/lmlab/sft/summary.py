"""The SFT stage's paper inputs: results/sft/summary.json, the cost and loss tables, the loss curves.

Reads only the adapter folders' metrics.json, training_config.json and train_log.tsv, and each
adapter's timing file (its cost.json); wall-clock numbers go to timing/summary.json and the cost
table to timing/, so summary.json is byte-identical across reruns.
"""

from pathlib import Path

from lmlab.core.format import fmt_fixed, save_figure
from lmlab.core.io import read_json, read_tsv, write_tsv
from lmlab.core.timing import write_results
from lmlab.sft.outputs import LOG_COLUMNS

FLOPS_FORMULA_TEXT = "(4 x N_forward + 2 x N_trainable) x training tokens (LoRA: no weight gradients for the frozen base)"


def summarize(adapter_dirs, timing_paths, summary_path, timing_summary_path, cost_table, loss_table, figure_png,
              figure_pdf, variants=None):
    """results/sft/: summary.json, tables/sft_cost.tsv, tables/sft_losses.tsv, figures/sft_curves.*

    `adapter_dirs` and `timing_paths` are keyed by adapter name: a template, or for a variant
    of the reference adapter (`variants`: {adapter: (variant, overrides)}) <template>-<variant>.
    The templates are compared with each other (best_template); each variant is reported
    beside the reference under `variants`. Every number of the paper's SFT section is in
    summary.json; the tables hold the same numbers formatted for reading (cost) or the full
    curves (losses)."""
    variants = variants or {}
    # Lazy: matplotlib is needed only to draw the figure.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    templates, variant_runs, cost_rows, loss_rows, settings = {}, {}, [], [], None
    for template, folder in adapter_dirs.items():
        folder = Path(folder)
        metrics = read_json(folder / "metrics.json")
        cost = read_json(timing_paths[template])
        training = read_json(folder / "training_config.json")
        if template not in variants:
            settings = settings or training["lmlab_sft"]
        curve = read_tsv(folder / "train_log.tsv")
        t = {
            k: metrics[k]
            for k in (
                "global_step",
                "final_train_loss",
                "final_eval_loss",
                "base_eval_loss",
                "best_checkpoint_step",
                "metric_for_best_model",
                "n_train",
                "n_eval",
                "trainable_params",
                "qlora",
            )
        }
        t["eval_loss_drop"] = (
            t["base_eval_loss"] - t["final_eval_loss"]
            if t["base_eval_loss"] is not None and t["final_eval_loss"] is not None
            else None
        )
        t.update(
            tokens=cost["tokens"],
            tokens_per_s=cost["tokens_per_s"],
            wall_s=cost["wall_s"],
            train_step_s=cost["train_step_s"],
            peak_memory_mib=cost["peak_memory_bytes"] / 2**20,
            achieved_flops_per_s=cost["achieved_flops_per_s"],
            probe_flops_per_s=cost["probe_flops_per_s"],
            achieved_over_probe=cost["achieved_over_probe"],
            n_forward_params=cost["n_forward_params"],
            device=cost["device"],
            threads=cost.get("threads"),
            resumed=cost.get("resumed", False),
            train_step_cpu_s=cost.get("train_step_cpu_s", 0.0),
            load_average=cost.get("load_average"),
        )
        if template in variants:
            variant, overrides = variants[template]
            variant_runs[variant] = {**t, "adapter": template, "template": training["template"],
                                     "overrides": overrides}
        else:
            templates[template] = t
        cost_rows.append(
            {
                "adapter": template,
                "steps": str(t["global_step"]),
                "train tokens": str(t["tokens"]),
                "wall (s)": f"{t['wall_s']:.1f}",
                "tokens/s": f"{t['tokens_per_s']:.1f}",
                "achieved GFLOP/s": f"{t['achieved_flops_per_s'] / 1e9:.2f}",
                "GEMM probe GFLOP/s": f"{t['probe_flops_per_s'] / 1e9:.2f}",
                "achieved / probe": f"{t['achieved_over_probe']:.3f}",
                "step CPU (s)": f"{t['train_step_cpu_s']:.1f}",
                "load avg": fmt_fixed(t["load_average"], 1, missing="n/a"),
                "peak memory (MiB)": f"{t['peak_memory_mib']:.0f}",
                "base val. loss": fmt_fixed(t["base_eval_loss"], 4, missing="n/a"),
                "kept val. loss": fmt_fixed(t["final_eval_loss"], 4, missing="n/a"),
            }
        )
        loss_rows.extend({"adapter": template, **row} for row in curve)
    with_eval = [name for name in templates if templates[name]["final_eval_loss"] is not None]
    summary = {
        "templates": templates,
        "template_order": [name for name in adapter_dirs if name not in variants],
        "n_templates": len(templates),
        "variants": variant_runs,
        "variant_order": [variants[name][0] for name in adapter_dirs if name in variants],
        "total_wall_s": sum(t["wall_s"] for t in [*templates.values(), *variant_runs.values()]),
        "best_template": min(with_eval, key=lambda name: templates[name]["final_eval_loss"]) if with_eval else None,
        "flops_formula": FLOPS_FORMULA_TEXT,
        "settings": (
            {
                k: settings[k]
                for k in (
                    "mix",
                    "max_train_examples",
                    "max_eval_examples",
                    "r",
                    "alpha",
                    "dropout",
                    "target_modules",
                    "learning_rate",
                    "max_steps",
                    "num_train_epochs",
                    "per_device_train_batch_size",
                    "gradient_accumulation_steps",
                    "max_length",
                    "warmup_steps",
                    "lr_scheduler_type",
                    "eval_steps",
                    "save_steps",
                    "metric_for_best_model",
                    "qlora",
                )
            }
            if settings
            else {}
        ),
    }
    write_results(summary_path, summary, timing_summary_path)
    write_tsv(cost_table, cost_rows, columns=list(cost_rows[0]) if cost_rows else ["adapter"])
    write_tsv(loss_table, loss_rows, columns=["adapter", *LOG_COLUMNS], digits=6)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for template in adapter_dirs:
        rows = [r for r in loss_rows if r["adapter"] == template]
        train = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
        evals = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r["eval_loss"]]
        if train:
            axes[0].plot(*zip(*train), label=template)
        if evals:
            axes[1].plot(*zip(*evals), marker="o", label=template)
    for ax, title in zip(axes, ("training loss (completion tokens)", "validation loss (completion tokens)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title(title)
        ax.legend(title="adapter")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    for path in (figure_png, figure_pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, figure_png, figure_pdf)
    plt.close(fig)
    return summary
