"""Rule paper: render results/paper/paper.html and provenance.json from the stages' results."""

from pathlib import Path

from lmlab.core.io import read_json, sha256_file, write_json
from lmlab.paper.render import build_provenance, render_paper
from lmlab.core.step import step

with step(snakemake) as smk:
    report_dir = Path(smk.output.html).parent
    summaries = {stage: smk.input[stage] for stage in smk.params.stages}
    provenance = build_provenance(report_dir, read_json(smk.input.sources), smk.input.records)
    template_dir = next(Path(t).parent for t in smk.input.templates if t.endswith("paper.html.j2"))
    render_paper(
        template_dir,
        smk.output.html,
        smk.config,
        smk.input.manifest,
        Path(smk.input.base_model) / "base_model.json",
        summaries,
        provenance,
    )
    provenance["paper"] = {"sha256": sha256_file(smk.output.html)}
    write_json(smk.output.provenance, provenance)
