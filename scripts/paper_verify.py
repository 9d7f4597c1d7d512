"""Rule paper_verify: fail, naming the file, if anything listed in provenance.json has changed."""

from lmlab.paper.verify import verify
from lmlab.core.step import step

with step(snakemake) as smk:
    problems = verify(smk.input.provenance)
    if problems:
        raise SystemExit("verify failed:\n" + "\n".join(problems))
    print(f"verify: every hash in {smk.input.provenance} matches")
