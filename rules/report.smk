# The paper. `snakemake figures` regenerates figures and tables without retraining anything;
# `snakemake verify` checks every hash in provenance.json against the files on disk.
COST = f"{RESULTS}/cost"
# Every job's benchmark file is an output of that job; the cost rule reads them all. Jobs are
# named like their provenance records, so the list follows PROVENANCE. The cost rule itself,
# figures, paper and verify run after (or from) the cost summary: their benchmarks cannot be inputs.
BENCHMARKS = [bench(Path(p).stem) for p in PROVENANCE]
NOT_BENCHMARKED = ["cost_summary", "figures", "paper", "verify"]
PAPER_INPUTS["cost"] = f"{COST}/summary.json"
STAGE_SUMMARIES = {
    stage: PAPER_INPUTS[stage]
    for stage in (
        "context",
        "sft",
        "alignment",
        "evaluation",
        "errors",
        "agents",
        "cost",
    )
    if stage in PAPER_INPUTS
}
TEMPLATES = sorted(str(p) for p in Path(workflow.basedir, "report").rglob("*.j2"))


rule cost_summary:
    input:
        **{
            k: PAPER_INPUTS[k]
            for k in ("sft", "alignment", "evaluation")
            if k in PAPER_INPUTS
        },
        benchmarks=BENCHMARKS,
    output:
        summary=f"{COST}/summary.json",
        rules_table=f"{COST}/tables/cost_rules.tsv",
        training_table=f"{COST}/tables/cost_training.tsv",
        tokens_table=f"{COST}/tables/cost_tokens.tsv",
        png=f"{COST}/figures/cost_wall_time.png",
        pdf=f"{COST}/figures/cost_wall_time.pdf",
        prov=prov("cost_summary"),
    log:
        log_path("cost_summary"),
    benchmark:
        bench("cost_summary")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("cost_summary"),
    params:
        rules=sorted(r.name for r in workflow.rules),
        not_benchmarked=NOT_BENCHMARKED,
    script:
        "../scripts/cost_summary.py"


PROVENANCE.append(prov("cost_summary"))


rule figures:
    input:
        **STAGE_SUMMARIES,
        manifest=PAPER_INPUTS["manifest"],
    output:
        figures=directory(f"{REPORT}/figures"),
        tables=directory(f"{REPORT}/tables"),
        sources=f"{REPORT}/figure_sources.json",
        prov=prov("figures"),
    log:
        log_path("figures"),
    benchmark:
        bench("figures")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("figures"),
    params:
        stages=list(STAGE_SUMMARIES),
    script:
        "../scripts/report_figures.py"


rule paper:
    input:
        **STAGE_SUMMARIES,
        manifest=PAPER_INPUTS["manifest"],
        base_model=BASE,
        figures=f"{REPORT}/figures",
        sources=f"{REPORT}/figure_sources.json",
        records=PROVENANCE + [prov("figures")],
        templates=TEMPLATES,
    output:
        html=report(
            f"{REPORT}/paper.html",
            caption="../report/captions/paper.rst",
            category="Paper",
        ),
        provenance=f"{REPORT}/provenance.json",
    log:
        log_path("paper"),
    benchmark:
        bench("paper")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("paper"),
    params:
        stages=list(STAGE_SUMMARIES),
    script:
        "../scripts/report_paper.py"


rule verify:
    input:
        provenance=f"{REPORT}/provenance.json",
        listed=provenance_listed_files,
    log:
        log_path("verify"),
    benchmark:
        bench("verify")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("verify"),
    script:
        "../scripts/report_verify.py"
