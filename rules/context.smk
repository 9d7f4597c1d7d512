# Tokenization and context-window study.
#
# Targets:
#   snakemake --cores 2 results/context/summary.json    the whole stage (paper input)
#   snakemake --cores 2 results/context/stats/stats.json    tokenizers, templates, truncation,
#                                                           sliding windows, cost (no model run)
#   snakemake --cores 2 results/context/accuracy/accuracy.json    base model per window
#   snakemake --cores 2 results/context/bpb/bpe-1000.json    one tiny LM's bits per byte
#   snakemake --cores 2 results/context/tokenizers/bpe-8000/tokenizer.json
# Knobs: config["context"] (config/schema.yaml documents each key) and config["templates"].
from lmlab.context.report import FIGURES as CTX_FIGURES, TABLES as CTX_TABLES

CTX = f"{RESULTS}/context"
CTX_CFG = config["context"]
CTX_DATA = [
    "sft_train",
    "sft_validation",
    "sft_test",
    "preferences_train",
    "preferences_test",
    "kb",
    "agent_tasks",
]
CTX_BPE = [f"bpe-{v}" for v in CTX_CFG["bpe_vocab_sizes"]]
CTX_LMS = CTX_CFG["bpb"]["tokenizers"]
CTX_STATS_FILES = ["examples.tsv", "templates.tsv", "truncation.tsv", "windows.tsv"]
CTX_SHARED = dict(
    stride_fraction=CTX_CFG["stride_fraction"],
    depth_edges=CTX_CFG["depth_edges"],
    bm25_k1=CTX_CFG["bm25"]["k1"],
    bm25_b=CTX_CFG["bm25"]["b"],
)
# Trained tokenizer files, by name ("bpe-1000").
CTX_TOKENIZER = {name: f"{CTX}/tokenizers/{name}/tokenizer.json" for name in CTX_BPE}


rule context_tokenizers:
    input:
        train=data_path("sft_train"),
    output:
        tokenizers=[CTX_TOKENIZER[name] for name in CTX_BPE],
        info=f"{CTX}/tokenizers/tokenizers.json",
        prov=prov("context_tokenizers"),
    log:
        log_path("context_tokenizers"),
    benchmark:
        bench("context_tokenizers")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("context_tokenizers"),
    params:
        vocab_sizes=CTX_CFG["bpe_vocab_sizes"],
        min_frequency=CTX_CFG["bpe_min_frequency"],
    script:
        "../scripts/context_tokenizers.py"


rule context_stats:
    input:
        **{name: data_path(name) for name in CTX_DATA},
        base=BASE,
        tokenizers=[CTX_TOKENIZER[name] for name in CTX_BPE],
    output:
        stats=f"{CTX}/stats/stats.json",
        tables=[f"{CTX}/stats/{name}" for name in CTX_STATS_FILES],
        timing=f"{CTX}/timing/stats.json",
        prov=prov("context_stats"),
    log:
        log_path("context_stats"),
    benchmark:
        bench("context_stats")
    conda:
        "../envs/data.yaml"
    threads: CPU_THREADS
    resources:
        **cpu_resources("context_stats"),
    params:
        datasets=CTX_DATA,
        bpe=CTX_BPE,
        templates=config["templates"],
        template=CTX_CFG["template"],
        windows=CTX_CFG["windows"],
        max_rows=CTX_CFG["max_rows"],
        kw=CTX_SHARED,
    script:
        "../scripts/context_stats.py"


rule context_accuracy:
    input:
        test=data_path("sft_test"),
        base=BASE,
    output:
        generations=f"{CTX}/accuracy/generations.jsonl",
        accuracy=f"{CTX}/accuracy/accuracy.json",
        timing=f"{CTX}/timing/accuracy.json",
        prov=prov("context_accuracy"),
    log:
        log_path("context_accuracy"),
    benchmark:
        bench("context_accuracy")
    conda:
        "../envs/eval.yaml"
    threads: CPU_THREADS
    resources:
        **gpu_resources("context_accuracy"),
    params:
        template=CTX_CFG["template"],
        windows=CTX_CFG["accuracy"]["windows"],
        n_items=CTX_CFG["accuracy"]["items"],
        max_new_tokens=CTX_CFG["accuracy"]["max_new_tokens"],
        batch_size=CTX_CFG["accuracy"]["batch_size"],
        n_resamples=CTX_CFG["accuracy"]["n_resamples"],
        kw=CTX_SHARED,
    script:
        "../scripts/context_accuracy.py"


rule context_bpb:
    input:
        train=data_path("sft_train"),
        validation=data_path("sft_validation"),
        tokenizer=lambda wc: [] if wc.lm == "bytes" else CTX_TOKENIZER[wc.lm],
    output:
        result=f"{CTX}/bpb/{{lm}}.json",
        timing=f"{CTX}/timing/bpb-{{lm}}.json",
        prov=prov("context_bpb-{lm}"),
    log:
        log_path("context_bpb-{lm}"),
    benchmark:
        bench("context_bpb-{lm}")
    wildcard_constraints:
        lm="bytes|bpe-[0-9]+",
    conda:
        "../envs/train.yaml"
    # One thread each: the tiny models gain little from two, and two LMs train at once.
    threads: 1
    resources:
        **cpu_resources("context_bpb"),
    params:
        kw={k: v for k, v in CTX_CFG["bpb"].items() if k != "tokenizers"},
    script:
        "../scripts/context_bpb.py"


rule context_report:
    input:
        stats=f"{CTX}/stats/stats.json",
        tables=[f"{CTX}/stats/{name}" for name in CTX_STATS_FILES],
        accuracy=f"{CTX}/accuracy/accuracy.json",
        bpb=[f"{CTX}/bpb/{lm}.json" for lm in CTX_LMS],
        timing=[f"{CTX}/timing/stats.json", f"{CTX}/timing/accuracy.json"]
        + [f"{CTX}/timing/bpb-{lm}.json" for lm in CTX_LMS],
        tokenizers=f"{CTX}/tokenizers/tokenizers.json",
    output:
        summary=f"{CTX}/summary.json",
        timing=f"{CTX}/timing/summary.json",
        tables=[f"{CTX}/tables/{name}.tsv" for name in CTX_TABLES],
        figures=[
            f"{CTX}/figures/{name}.{ext}"
            for name in CTX_FIGURES
            for ext in ("png", "pdf")
        ],
        prov=prov("context_report"),
    log:
        log_path("context_report"),
    benchmark:
        bench("context_report")
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources("context_report"),
    params:
        lms=CTX_LMS,
    script:
        "../scripts/context_report.py"


PROVENANCE.extend(
    [prov("context_tokenizers"), prov("context_stats"), prov("context_accuracy")]
    + [prov(f"context_bpb-{lm}") for lm in CTX_LMS]
    + [prov("context_report")]
)
PAPER_INPUTS["context"] = f"{CTX}/summary.json"
PAPER_TIMINGS["context"] = f"{CTX}/timing/summary.json"
