"""The paper rendered by Jinja2 from the stage summaries, tables and provenance.

The templates in report/ only format what the stages wrote; sentences that depend on the
numbers come from lmlab.paper.questions and lmlab.paper.claims.
"""

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lmlab.core.format import fmt_ci, fmt_num, fmt_pct
from lmlab.core.io import atomic_write, read_json, read_tsv, sha256_file, write_json
from lmlab.core.timing import read_results
from lmlab.paper.figures import data_tables
from lmlab.paper.claims import abstract_sentences, design_table, threats
from lmlab.paper.questions import answer_questions
from lmlab.paper.verify import build_provenance

# Sections in reading order; a stage whose summary is missing is left out of the paper.
STAGES = ("context", "sft", "alignment", "evaluation", "errors", "agents", "seeds", "cost")


def jinja_env(template_dir):
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
    """A stage's summary with its timings merged back (timing/summary.json beside it, when the
    stage measures wall clock) and its tables, timing tables included."""
    stage_dir = Path(summary_path).parent
    timing = stage_dir / "timing" / "summary.json"
    summary = read_results(summary_path, timing if timing.exists() else None)
    tables = {t.stem: read_tsv(t) for t in sorted([*(stage_dir / "tables").glob("*.tsv"), *(stage_dir / "timing").glob("*.tsv")])}
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
    # Sentences chosen by the numbers (lmlab.paper.questions, lmlab.paper.claims), not written into the templates.
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
        "design": design_table(summaries),
        "threats": threats(summaries, base_model, manifest, config),
        "stage_order": [s for s in STAGES if s in sections],
        "provenance": provenance,
        "figure_exists": lambda name: (Path(out_html).parent / "figures" / f"{name}.png").exists(),
    }
    text = env.get_template("paper.html.j2").render(**context)
    with atomic_write(out_html) as handle:
        handle.write(text)
    return text


def write_paper(out_html, out_provenance, *, templates, config, manifest, base_model_dir, summaries, sources, records):
    """Rule paper: provenance of every artifact, the rendered paper, and the paper's own hash."""
    report_dir = Path(out_html).parent
    provenance = build_provenance(report_dir, read_json(sources), records)
    template_dir = next(Path(t).parent for t in templates if t.endswith("paper.html.j2"))
    render_paper(template_dir, out_html, config, manifest, Path(base_model_dir) / "base_model.json", summaries, provenance)
    provenance["paper"] = {"sha256": sha256_file(out_html)}
    write_json(out_provenance, provenance)
