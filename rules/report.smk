# The paper. `snakemake figures` regenerates figures and tables without retraining anything;
# `snakemake verify` checks every hash in provenance.json against the files on disk.
STAGE_SUMMARIES = {
    stage: PAPER_INPUTS[stage]
    for stage in ("context", "sft", "alignment", "evaluation", "errors", "agents")
    if stage in PAPER_INPUTS
}
TEMPLATES = sorted(str(p) for p in Path(workflow.basedir, "report").rglob("*.j2"))


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
