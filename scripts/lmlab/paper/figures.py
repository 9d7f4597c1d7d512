"""The paper's figures and tables: each stage's figures and tables copied into the paper
folder, tables exported as LaTeX (booktabs), and the data section's own figure and table.

Stages follow one contract (docs/CONVENTIONS.md): `results/<stage>/summary.json` holds every
number the section cites, with tables in `tables/*.tsv` and figures in `figures/*.{png,pdf}`
beside it, all written by the same rule as the summary; wall-clock numbers live apart in
`timing/` (summary.json and tables), merged back when the paper reads a stage. The paper never computes a result;
it formats what the stages wrote, so every number traces back to a results file.
"""

import shutil
from pathlib import Path

from lmlab.core.format import apply_style, save_figure
from lmlab.core.io import read_json, read_tsv, write_json, write_tsv


def tex_escape(text):
    table = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
             "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
    return "".join(table.get(c, c) for c in str(text))


def tsv_to_latex(rows, caption, label):
    """A booktabs table of TSV rows (strings as read, already formatted by the stage)."""
    columns = list(rows[0]) if rows else []
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "l" * len(columns) + "}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex_escape(r[c]) for c in columns) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{tex_escape(caption)}}}", rf"\label{{tab:{label}}}", r"\end{table}", ""]
    return "\n".join(lines)


def data_figure(manifest, out_png, out_pdf):
    """Items per task and language in each SFT split (the data section's figure)."""
    # matplotlib is imported on use: the rules import this package at DAG-parse time.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply_style(plt)
    splits = [n for n in ("sft_train", "sft_validation", "sft_test") if n in manifest]
    tasks = sorted({t for n in splits for t in manifest[n]["per_task"]})
    fig, axes = plt.subplots(1, len(splits), figsize=(3.2 * len(splits), 3.2), sharey=False)
    axes = axes if len(splits) > 1 else [axes]
    for ax, name in zip(axes, splits):
        counts = manifest[name]["per_task_lang"]
        en = [counts.get(f"{t}/en", 0) for t in tasks]
        es = [counts.get(f"{t}/es", 0) for t in tasks]
        y = range(len(tasks))
        ax.barh(y, en, label="en", color="#4C72B0")
        ax.barh(y, es, left=en, label="es", color="#DD8452")
        ax.set_yticks(list(y), tasks if ax is axes[0] else [""] * len(tasks))
        ax.set_title(name)
        ax.set_xlabel("items")
    axes[0].legend(loc="lower right", frameon=False)
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def data_tables(manifest):
    rows = []
    for name, m in manifest.items():
        rows.append(
            {
                "file": name,
                "rows": str(m["rows"]),
                "en": str(m["per_lang"].get("en", 0)),
                "es": str(m["per_lang"].get("es", 0)),
                "groups": ", ".join(f"{k} {v}" for k, v in m["per_task"].items()),
                "sha256": m["sha256"][:12],
            }
        )
    return rows


# Stages whose every number is a timing (the cost section): their figures and tables go to
# the paper's timing/ folder with the other stages' timing/ tables (lmlab.core.timing).
TIMING_STAGES = ("cost",)


def _copy_stage(stage, figures, tables, fig_dir, table_dir, prefix, sources):
    for fig in figures:
        if fig.suffix in (".png", ".pdf"):
            target = fig_dir / fig.name
            if target.exists() and str(sources.get(f"{prefix}figures/{fig.name}")) != str(fig):
                raise ValueError(f"{fig}: figure name collides with another stage's")
            shutil.copyfile(fig, target)
            sources[f"{prefix}figures/{fig.name}"] = str(fig)
    for tsv in tables:
        shutil.copyfile(tsv, table_dir / tsv.name)
        (table_dir / f"{tsv.stem}.tex").write_text(
            tsv_to_latex(read_tsv(tsv), f"{stage}: {tsv.stem}", tsv.stem), encoding="utf-8"
        )
        sources[f"{prefix}tables/{tsv.name}"] = str(tsv)
        sources[f"{prefix}tables/{tsv.stem}.tex"] = str(tsv)


def build_figures(stage_summaries, manifest_path, fig_dir, table_dir, timing_dir):
    """Copy every stage's figures and tables into the report folder, export tables as LaTeX,
    and draw the data figure; timing tables and figures (a stage's timing/ folder, the cost
    stage) go to `timing_dir`/{figures,tables}, so figures/ and tables/ are byte-identical
    across reruns. Returns {relative path: source path} for provenance."""
    fig_dir, table_dir, timing_dir = Path(fig_dir), Path(table_dir), Path(timing_dir)
    for folder in (fig_dir, table_dir, timing_dir / "figures", timing_dir / "tables"):
        folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    manifest = read_json(manifest_path)
    data_figure(manifest, fig_dir / "data_counts.png", fig_dir / "data_counts.pdf")
    sources["figures/data_counts.png"] = str(manifest_path)
    sources["figures/data_counts.pdf"] = str(manifest_path)
    rows = data_tables(manifest)
    write_table(rows, table_dir, "data_files", "Validated input files.")
    sources["tables/data_files.tsv"] = str(manifest_path)
    sources["tables/data_files.tex"] = str(manifest_path)
    timing_figs, timing_tables = timing_dir / "figures", timing_dir / "tables"
    for stage, summary_path in stage_summaries.items():
        stage_dir = Path(summary_path).parent
        figures = sorted((stage_dir / "figures").glob("*"))
        tables = sorted((stage_dir / "tables").glob("*.tsv"))
        if stage in TIMING_STAGES:
            _copy_stage(stage, figures, tables, timing_figs, timing_tables, "timing/", sources)
        else:
            _copy_stage(stage, figures, tables, fig_dir, table_dir, "", sources)
            _copy_stage(stage, [], sorted((stage_dir / "timing").glob("*.tsv")), timing_figs, timing_tables,
                        "timing/", sources)
    write_json(Path(fig_dir).parent / "figure_sources.json", sources)
    return sources


def write_table(rows, table_dir, name, caption):
    write_tsv(Path(table_dir) / f"{name}.tsv", rows)
    (Path(table_dir) / f"{name}.tex").write_text(tsv_to_latex(rows, caption, name), encoding="utf-8")
