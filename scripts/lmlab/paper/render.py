"""The paper: figures and tables collected from every stage, rendered by Jinja2.

Stages follow one contract (docs/CONVENTIONS.md): `results/<stage>/summary.json` holds every
number the section cites, with tables in `tables/*.tsv` and figures in `figures/*.{png,pdf}`
beside it, all written by the same rule as the summary. The paper never computes a result;
it formats what the stages wrote, so every number traces back to a results file.
"""

import json
import shutil
from pathlib import Path

from lmlab.core.format import apply_style, fmt_ci, fmt_num, fmt_pct
from lmlab.core.io import atomic_write, read_json, read_tsv, sha256_file, write_json

# Sections in reading order; a stage whose summary is missing is left out of the paper.
STAGES = ("context", "sft", "alignment", "evaluation", "errors", "agents", "cost")


# ---------------------------------------------------------------- tables and figures


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
    fig.savefig(out_png, dpi=150)
    fig.savefig(out_pdf)
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


def build_figures(stage_summaries, manifest_path, fig_dir, table_dir):
    """Copy every stage's figures and tables into the report folder, export tables as LaTeX,
    and draw the data figure. Returns {relative path: source path} for provenance."""
    fig_dir, table_dir = Path(fig_dir), Path(table_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    table_dir.mkdir(parents=True, exist_ok=True)
    sources = {}
    manifest = read_json(manifest_path)
    data_figure(manifest, fig_dir / "data_counts.png", fig_dir / "data_counts.pdf")
    sources["figures/data_counts.png"] = str(manifest_path)
    sources["figures/data_counts.pdf"] = str(manifest_path)
    rows = data_tables(manifest)
    write_table(rows, table_dir, "data_files", "Validated input files.")
    sources["tables/data_files.tsv"] = str(manifest_path)
    sources["tables/data_files.tex"] = str(manifest_path)
    for stage, summary_path in stage_summaries.items():
        stage_dir = Path(summary_path).parent
        for fig in sorted((stage_dir / "figures").glob("*")):
            if fig.suffix in (".png", ".pdf"):
                target = fig_dir / fig.name
                if target.exists() and str(sources.get(f"figures/{fig.name}")) != str(fig):
                    raise ValueError(f"{fig}: figure name collides with another stage's")
                shutil.copyfile(fig, target)
                sources[f"figures/{fig.name}"] = str(fig)
        for tsv in sorted((stage_dir / "tables").glob("*.tsv")):
            shutil.copyfile(tsv, table_dir / tsv.name)
            (table_dir / f"{tsv.stem}.tex").write_text(
                tsv_to_latex(read_tsv(tsv), f"{stage}: {tsv.stem}", tsv.stem), encoding="utf-8"
            )
            sources[f"tables/{tsv.name}"] = str(tsv)
            sources[f"tables/{tsv.stem}.tex"] = str(tsv)
    write_json(Path(fig_dir).parent / "figure_sources.json", sources)
    return sources


def write_table(rows, table_dir, name, caption):
    from lmlab.core.io import write_tsv

    write_tsv(Path(table_dir) / f"{name}.tsv", rows)
    (Path(table_dir) / f"{name}.tex").write_text(tsv_to_latex(rows, caption, name), encoding="utf-8")


# ---------------------------------------------------------------- provenance


def producing_record(path, records):
    """The provenance record whose outputs contain `path` (a file or a folder above it)."""
    path = Path(path)
    for record_path, record in records.items():
        for out in record["outputs"]:
            if path == Path(out) or Path(out) in path.parents:
                return record_path, record
    return None, None


def build_provenance(report_dir, sources, record_paths):
    records = {str(p): read_json(p) for p in record_paths}
    artifacts = {}
    for rel, source in sorted(sources.items()):
        record_path, record = producing_record(source, records)
        artifacts[rel] = {
            "sha256": sha256_file(Path(report_dir) / rel),
            "source": source,
            "source_sha256": sha256_file(source) if Path(source).is_file() else None,
            "rule": record["rule"] if record else None,
            "record": record_path,
        }
    return {"artifacts": artifacts, "records": records}


def verify(provenance_path, report_dir=None):
    """Recompute every hash listed in provenance.json; return the list of mismatches."""
    provenance = read_json(provenance_path)
    report_dir = Path(report_dir or Path(provenance_path).parent)
    problems = []
    for rel, art in provenance["artifacts"].items():
        path = report_dir / rel
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != art["sha256"]:
            problems.append(f"{path}: sha256 changed since the paper was rendered")
        if art.get("source_sha256") and Path(art["source"]).exists():
            if sha256_file(art["source"]) != art["source_sha256"]:
                problems.append(f"{art['source']}: sha256 changed since the paper was rendered")
    paper = provenance.get("paper")
    if paper and sha256_file(report_dir / "paper.html") != paper["sha256"]:
        problems.append(f"{report_dir / 'paper.html'}: sha256 changed since it was rendered")
    for record_path, record in provenance["records"].items():
        for out, digest in record["outputs"].items():
            if Path(out).is_file() and sha256_file(out) != digest:
                problems.append(f"{out}: sha256 changed since rule {record['rule']} wrote it")
    return problems


# ---------------------------------------------------------------- rendering


def jinja_env(template_dir):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(template_dir)),
        # Model outputs are untrusted text: escape everything rendered into HTML.
        autoescape=select_autoescape(["html", "j2", "html.j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, pct=fmt_pct, ci=fmt_ci, tojson_pretty=lambda o: json.dumps(o, indent=2, sort_keys=True))
    return env


def load_stage(summary_path):
    summary = read_json(summary_path)
    tables = {t.stem: read_tsv(t) for t in sorted((Path(summary_path).parent / "tables").glob("*.tsv"))}
    return summary, tables


def render_paper(template_dir, out_html, config, manifest_path, base_model_json, stage_summaries, provenance):
    env = jinja_env(template_dir)
    sections = {}
    for stage in STAGES:
        if stage in stage_summaries:
            summary, tables = load_stage(stage_summaries[stage])
            sections[stage] = {"s": summary, "tables": tables}
    manifest = read_json(manifest_path)
    base_model = read_json(base_model_json)
    # Sentences chosen by the numbers (lmlab.paper.questions), not written into the templates.
    from lmlab.paper.questions import abstract_sentences, answer_questions, threats

    summaries = {stage: sec["s"] for stage, sec in sections.items()}
    context = {
        "config": config,
        "title": config["paper"]["title"],
        "authors": config["paper"]["authors"],
        "manifest": manifest,
        "data_rows": data_tables(manifest),
        "base_model": base_model,
        "sections": sections,
        "abstract": abstract_sentences(summaries),
        "questions": answer_questions(summaries),
        "threats": threats(summaries, base_model, manifest, config),
        "stage_order": [s for s in STAGES if s in sections],
        "provenance": provenance,
        "figure_exists": lambda name: (Path(out_html).parent / "figures" / f"{name}.png").exists(),
    }
    text = env.get_template("paper.html.j2").render(**context)
    with atomic_write(out_html) as handle:
        handle.write(text)
    return text
