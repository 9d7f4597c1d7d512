# Helpers shared by every rules file: paths, provenance/log/benchmark names, resources.
import json
from pathlib import Path

RESULTS = "results"
REPORT = f"{RESULTS}/paper"
# Every rule's provenance record; the paper rule reads them all for its appendix.
PROVENANCE = []
# Named inputs of the paper, added to by each stage's rules file.
PAPER_INPUTS = {}
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


def provenance_listed_files(wildcards):
    """Every file provenance.json lists, so that a changed file makes `verify` run again."""
    path = Path(REPORT, "provenance.json")
    if not path.exists():
        return []
    provenance = json.loads(path.read_text())
    listed = [str(Path(REPORT, rel)) for rel in provenance["artifacts"]]
    for record in provenance["records"].values():
        listed += [out for out in record["outputs"] if Path(out).is_file()]
    return sorted(p for p in set(listed) if Path(p).exists())
