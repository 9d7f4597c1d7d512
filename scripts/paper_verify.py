"""Rule paper_verify: fail, naming each file, if anything the paper depends on has changed."""

import sys

from lmlab.core.step import step
from lmlab.paper.verify import report, verify

with step(snakemake) as smk:
    problems, checked = verify(smk.input.provenance, manifest_path=smk.input.manifest)
    text = report(problems, checked, smk.input.provenance)
    print(text)
    if problems:
        # The verdict last on stderr, below Snakemake's listing of the inputs.
        print(text, file=sys.stderr)
        raise SystemExit(1)
