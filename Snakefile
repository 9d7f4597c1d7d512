# lmlab: raw JSONL -> context study, SFT, alignment, evaluation, agents -> paper.
# The DAG lives in rules/*.smk; step scripts in scripts/ call the library in scripts/lmlab/.
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, f"{workflow.basedir}/scripts")
from lmlab.core.config import check_config

min_version("9.0")


# The embedded default, unless the command line names config files: those then stand alone
# (Snakemake would otherwise merge them over config.yaml, leaking its sizes into tests).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# One-line error for an unknown key or a wrong type, then validate() fills the defaults.
check_config(config, f"{workflow.basedir}/config/schema.yaml")
validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/context.smk"
include: "rules/sft.smk"
include: "rules/alignment.smk"
include: "rules/evaluation.smk"
include: "rules/agents.smk"
include: "rules/paper.smk"


rule all:
    default_target: True
    input:
        "results/paper/paper.html",
        "results/paper/provenance.json",
        ALL_TARGETS,
