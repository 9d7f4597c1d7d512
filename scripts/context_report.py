"""Rule context_report: the context stage's tables, figures and summary.json."""

from pathlib import Path

from lmlab.context.report import context_report
from lmlab.core.io import read_json
from lmlab.core.step import step

with step(snakemake) as smk:
    timing = {Path(p).stem: p for p in smk.input.timing}
    context_report(
        Path(smk.input.stats).parent,
        smk.input.accuracy,
        dict(zip(smk.params.lms, smk.input.bpb)),
        timing,
        read_json(smk.input.tokenizers),
        smk.output.summary,
        Path(smk.output.tables[0]).parent,
        Path(smk.output.figures[0]).parent,
        smk.output.timing,
    )
