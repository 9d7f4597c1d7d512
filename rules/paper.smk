# The paper. `snakemake figures` regenerates figures and tables without retraining anything;
# `snakemake verify` checks every hash in provenance.json against the files on disk.
# The primary comparisons of every training seed, side by side (paper section "seeds").
SEEDS_DIR = f"{REPORT}/seeds"
PAPER_INPUTS["seeds"] = f"{SEEDS_DIR}/summary.json"


rule paper_seeds:
    input:
        evaluation=for_seeds(PAPER_INPUTS["evaluation"]),
        agents=for_seeds(PAPER_INPUTS["agents"]),
    output:
        summary=f"{SEEDS_DIR}/summary.json",
        table=f"{SEEDS_DIR}/tables/seeds_primary.tsv",
        png=f"{SEEDS_DIR}/figures/seeds_primary.png",
        pdf=f"{SEEDS_DIR}/figures/seeds_primary.pdf",
        prov=prov("paper_seeds"),
    log:
        log_path("paper_seeds"),
    benchmark:
        bench("paper_seeds")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("paper_seeds"),
    params:
        seeds=SEEDS,
    script:
        "../scripts/paper_seeds.py"


PROVENANCE.append(prov("paper_seeds"))


COST = f"{REPORT}/cost"
# Every job's benchmark file is an output of that job; the cost rule reads them all. Jobs are
# named like their provenance records, so the list follows PROVENANCE. The cost rule itself,
# figures, paper and verify run after (or from) the cost summary: their benchmarks cannot be inputs.
BENCHMARKS = [bench(Path(p).stem) for p in PROVENANCE]
NOT_BENCHMARKED = ["paper_cost", "paper_figures", "paper", "paper_verify"]
PAPER_INPUTS["cost"] = f"{COST}/summary.json"
# The stages' summaries the paper renders: those of the first training seed (the others are
# in the seeds section); the context stage has no seed.
STAGE_SUMMARIES = {
    stage: of_reference_seed(PAPER_INPUTS[stage])
    for stage in (
        "context",
        "sft",
        "alignment",
        "evaluation",
        "errors",
        "agents",
        "seeds",
        "cost",
    )
    if stage in PAPER_INPUTS
}
TEMPLATES = sorted(str(p) for p in Path(workflow.basedir, "report").rglob("*.j2"))


rule paper_cost:
    input:
        **{
            k: of_reference_seed(PAPER_INPUTS[k])
            for k in ("sft", "alignment", "evaluation")
            if k in PAPER_INPUTS
        },
        **{
            f"{k}_timing": of_reference_seed(PAPER_TIMINGS[k])
            for k in ("sft", "alignment", "evaluation")
            if k in PAPER_TIMINGS
        },
        benchmarks=BENCHMARKS,
    output:
        summary=f"{COST}/summary.json",
        rules_table=f"{COST}/tables/cost_rules.tsv",
        training_table=f"{COST}/tables/cost_training.tsv",
        tokens_table=f"{COST}/tables/cost_tokens.tsv",
        png=f"{COST}/figures/cost_wall_time.png",
        pdf=f"{COST}/figures/cost_wall_time.pdf",
        prov=prov("paper_cost"),
    log:
        log_path("paper_cost"),
    benchmark:
        bench("paper_cost")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("paper_cost"),
    params:
        rules=sorted(r.name for r in workflow.rules),
        not_benchmarked=NOT_BENCHMARKED,
    script:
        "../scripts/paper_cost.py"


PROVENANCE.append(prov("paper_cost"))


rule paper_figures:
    input:
        **STAGE_SUMMARIES,
        timings=[of_reference_seed(p) for p in PAPER_TIMINGS.values()],
        manifest=PAPER_INPUTS["manifest"],
    output:
        figures=directory(f"{REPORT}/figures"),
        tables=directory(f"{REPORT}/tables"),
        # Timing tables and figures (wall clock), apart so figures/ and tables/ rerun identical.
        timing=directory(f"{REPORT}/timing"),
        sources=f"{REPORT}/figure_sources.json",
        prov=prov("paper_figures"),
    log:
        log_path("paper_figures"),
    benchmark:
        bench("paper_figures")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("paper_figures"),
    params:
        stages=list(STAGE_SUMMARIES),
    script:
        "../scripts/paper_figures.py"


rule paper:
    input:
        **STAGE_SUMMARIES,
        timings=[of_reference_seed(p) for p in PAPER_TIMINGS.values()],
        manifest=PAPER_INPUTS["manifest"],
        base_model=BASE,
        figures=f"{REPORT}/figures",
        timing=f"{REPORT}/timing",
        sources=f"{REPORT}/figure_sources.json",
        records=PROVENANCE + [prov("paper_figures")],
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
        "../scripts/paper.py"


rule paper_verify:
    input:
        provenance=f"{REPORT}/provenance.json",
        manifest=f"{RESULTS}/data/manifest.json",
        listed=provenance_listed_files,
    log:
        log_path("paper_verify"),
    benchmark:
        bench("paper_verify")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("paper_verify"),
    script:
        "../scripts/paper_verify.py"
