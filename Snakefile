# lmlab: raw JSONL -> context study, SFT, alignment, evaluation, agents -> paper.
# The DAG lives in rules/*.smk; step scripts in scripts/ call the library in scripts/lmlab/.
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, f"{workflow.basedir}/scripts")
from lmlab.core.config import check_config, check_rules

min_version("9.0")


# The embedded default, unless the command line names config files: those then stand alone
# (Snakemake would otherwise merge them over config.yaml, leaking its sizes into tests).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# One-line error for an unknown key or a wrong type, then validate() fills the defaults,
# then the rules that tie sections together: every config check is here, before any job.
check_config(config, f"{workflow.basedir}/config/schema.yaml")
validate(config, "config/schema.yaml")
check_rules(config)


# Bookkeeping rules (tables, figures, summaries, the paper; no torch, seconds each) run where
# Snakemake runs instead of through the cluster's queue, where each would wait for a slot
# and a status poll. Locally this changes nothing.
localrules:
    all,
    evaluation_testset,
    evaluation_score,
    evaluation_matrix,
    evaluation_summary,
    evaluation_errors,
    evaluation_human_sheet,
    evaluation_human_agreement,
    sft_summary,
    alignment_summary,
    agents_summary,
    context_report,
    paper_seeds,
    paper_cost,
    paper_figures,
    paper,
    paper_verify,


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
        f"{RESULTS}/paper/paper.html",
        f"{RESULTS}/paper/provenance.json",
        ALL_TARGETS,
