# Helpers shared by every rules file: paths, provenance/log/benchmark names, resources.
import json
from pathlib import Path

# Each run writes under its own root (results/<run_name>/ unless config["results"] names
# one), so the default, the test and a cluster config never overwrite each other.
RESULTS = (config["results"] or f"results/{config['run_name']}").rstrip("/")
REPORT = f"{RESULTS}/paper"
# Every rule's provenance record; the paper rule reads them all for its appendix.
PROVENANCE = []
# Named inputs of the paper, added to by each stage's rules file.
PAPER_INPUTS = {}
# The timing file beside each stage summary (wall clock, kept apart from results so that
# results are byte-identical across reruns; lmlab.core.timing).
PAPER_TIMINGS = {}
# Extra targets of `rule all` that the paper does not read (yet).
ALL_TARGETS = []


def prov(name):
    path = f"{RESULTS}/provenance/{name}.json"
    return path


def log_path(name):
    return f"{RESULTS}/logs/{name}.log"


def bench(name):
    return f"{RESULTS}/benchmarks/{name}.tsv"


def data_path(name):
    return f"{RESULTS}/data/{name}.jsonl"


BASE = f"{RESULTS}/models/base/{config['base_model']['name']}"

# ---- seeds: training and everything downstream of it run once per training seed, under
# <root>/seed-<seed>/ (the {seed} wildcard); data, base model, test set and context study are
# shared by all seeds. The paper's item-level analyses show the first seed.
SEEDS = [str(s) for s in (config["seeds"] or [config["seed"]])]
REFERENCE_SEED = SEEDS[0]
SEED_ROOT = f"{RESULTS}/seed-{{seed}}"


wildcard_constraints:
    seed=r"\d+",


def for_seeds(pattern, seeds=None):
    """A path pattern with {seed} -> one path per training seed (other wildcards kept)."""
    patterns = pattern if isinstance(pattern, list) else [pattern]
    return expand(patterns, seed=seeds or SEEDS, allow_missing=True)


def at_seed(pattern, seed):
    """A path pattern (or a list of them) with {seed} -> the path(s) of one seed; for input
    functions and params that Snakemake does not fill with the job's wildcards."""
    paths = for_seeds(pattern, [str(seed)])
    return paths if isinstance(pattern, list) else paths[0]


def of_reference_seed(pattern):
    """A path pattern with {seed} -> the path of the first seed (the paper's item-level one)."""
    return at_seed(pattern, REFERENCE_SEED)


# ---- which models this config trains: facts every stage needs, computed from the config
# alone, so no rules file depends on another one's globals or on include order.


def sft_adapter(template):
    """The SFT adapter folder of a prompt template."""
    return f"{SEED_ROOT}/models/sft/{template}"


def sft_variants():
    """{variant: overrides} of config sft.variants: adapters of the alignment template trained
    with the reference settings but these keys (QLoRA, LoRA rank, target modules, data mix,
    ...), on the same data order and seed; each is the evaluation model `sft-<variant>`.
    """
    return config["sft"]["variants"]


def sft_variant_adapter(variant):
    return sft_adapter(f"{alignment_template()}-{variant}")


def sft_adapters():
    """Adapter names: one per template, then the variants of the alignment template, each
    <template>-<variant>."""
    templates = config["templates"]
    variants = sft_variants() if alignment_template() in templates else {}
    return templates + [f"{alignment_template()}-{v}" for v in variants]


def sft_settings(adapter):
    """(template, sft settings) of an adapter: the reference settings, with a variant's overrides."""
    prefix = f"{alignment_template()}-"
    variant = adapter[len(prefix) :] if adapter not in config["templates"] else ""
    overrides = sft_variants()[variant] if variant else {}
    settings = {k: v for k, v in config["sft"].items() if k != "variants"}
    return (alignment_template() if variant else adapter), {**settings, **overrides}


def sft_mix(adapter):
    """{dataset: validated path} of the adapter's training mix."""
    return {
        e["dataset"]: data_path(e["dataset"]) for e in sft_settings(adapter)[1]["mix"]
    }


def alignment_template():
    """The template of the SFT adapter every aligned policy starts from (and is prompted with)."""
    return config["alignment"]["sft_template"]


def dpo_betas():
    """The main DPO beta first, then the sweep; "0.1" not "0.10000" in paths."""
    dpo = config["alignment"]["dpo"]
    return list(dict.fromkeys(f"{b:g}" for b in [dpo["beta"], *dpo["beta_sweep"]]))


def dpo_adapter(beta):
    return f"{SEED_ROOT}/models/dpo/{alignment_template()}-beta{beta}"


def rloo_adapter(arm):
    return f"{SEED_ROOT}/models/rloo_{arm}/{alignment_template()}"


def reward_model():
    """The learned reward model (the evaluation stage's judge)."""
    return f"{SEED_ROOT}/models/reward/{alignment_template()}"


def aligned_models():
    """{name: adapter folder} of the aligned policies, each loadable on top of BASE."""
    return {
        "dpo": dpo_adapter(dpo_betas()[0]),
        "orpo": f"{SEED_ROOT}/models/orpo/{alignment_template()}",
        **{
            f"rloo_{arm}": rloo_adapter(arm)
            for arm in config["alignment"]["rloo"]["arms"]
        },
    }


def trained_models(sft_template):
    """{name: adapter folder, "" for the base alone} of every model a stage can run: the
    base, the SFT adapter of `sft_template` (when that template is trained), the SFT
    variants and the aligned policies."""
    models = {"base": ""}
    if sft_template in config["templates"]:
        models["sft"] = sft_adapter(sft_template)
    if alignment_template() in config["templates"]:
        models.update({f"sft-{v}": sft_variant_adapter(v) for v in sft_variants()})
    models.update(aligned_models())
    return models


def agent_models():
    """(models that run, {model: why it is skipped}) of the agents stage; "rloo" in
    agents.models stands for every RLOO arm the alignment stage trains."""
    available = trained_models(alignment_template())
    requested = []
    for name in config["agents"]["models"]:
        if name == "rloo":
            requested += [k for k in available if k.startswith("rloo_")] or ["rloo"]
        else:
            requested.append(name)
    requested = list(dict.fromkeys(requested))
    trained = ", ".join(k for k in available if k != "base") or "none"
    skipped = {
        m: f"no adapter: the stage that trains {m!r} is not configured (trained here: {trained})"
        for m in requested
        if m not in available
    }
    for name in ("base", "sft", *aligned_models()):
        if name not in requested:
            skipped[name] = "not in agents.models in this config"
    return [m for m in requested if m in available], skipped


def agent_runs():
    """(model, arm) of every agents_run job."""
    models, _ = agent_models()
    return [(m, a) for m in models for a in config["agents"]["arms"]]


def per_arm(pattern):
    """The pattern once per agent arm, in config order; {model} and {seed} stay wildcards."""
    return expand(pattern, arm=config["agents"]["arms"], allow_missing=True)


def agent_metrics(model, arm):
    return f"{SEED_ROOT}/agents/{model}/{arm}/metrics.json"


def cpu_resources(rule_name):
    """SLURM resources of a CPU rule, from config["hpc"] (+ per-rule overrides)."""
    hpc = config["hpc"]
    res = {
        "slurm_partition": hpc["cpu_partition"],
        "mem_mb": hpc["mem_mb"],
        "runtime": hpc["runtime"],
    }
    if hpc["account"]:
        res["slurm_account"] = hpc["account"]
    res.update(hpc["rules"].get(rule_name, {}))
    return res


def gpu_resources(rule_name):
    """SLURM resources of a GPU rule: the plugin's `gpu`, `cpus_per_gpu`, the GPU partition."""
    hpc = config["hpc"]
    res = {
        "slurm_partition": hpc["gpu_partition"],
        "gpu": hpc["gpus"],
        "cpus_per_gpu": hpc["cpus_per_gpu"],
        "mem_mb": hpc["gpu_mem_mb"],
        "runtime": hpc["gpu_runtime"],
    }
    if hpc["gpu_model"]:
        res["gpu_model"] = hpc["gpu_model"]
    if hpc["account"]:
        res["slurm_account"] = hpc["account"]
    res.update(hpc["rules"].get(rule_name, {}))
    return res


CPU_THREADS = config["hpc"]["cpu_threads"]

# Scheduling priorities (among ready jobs Snakemake starts the highest first). On a few cores
# the run lasts at least as long as its longest chain: SFT of the alignment template ->
# on-policy samples -> pairs -> reward model -> RLOO -> the aligned models' evaluation cells ->
# judge (which also waits for the SFT variants' cells). Jobs on it go first; the jobs off it
# (the other templates, the context study, agents, held-out reward scores, cells off the
# model axis) fill the cores around it, instead of the judge running alone at the end while
# one core idles.
PRIORITY_CHAIN = 2
PRIORITY_BEFORE_JUDGE = 1


def provenance_listed_files(wildcards):
    """Every file provenance.json lists, so that a changed file makes `verify` run again."""
    path = Path(REPORT, "provenance.json")
    if not path.exists():
        return []
    provenance = json.loads(path.read_text())
    listed = [str(Path(REPORT, rel)) for rel in provenance["artifacts"]]
    # Files and folders (a changed adapter reruns verify), and the raw inputs of the manifest.
    for record in provenance["records"].values():
        listed += list(record["outputs"])
    manifest = Path(RESULTS, "data", "manifest.json")
    if manifest.exists():
        listed += [
            e["file"]
            for e in json.loads(manifest.read_text()).values()
            if isinstance(e, dict) and e.get("file")
        ]
    return sorted(p for p in set(listed) if Path(p).exists())
