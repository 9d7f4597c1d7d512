"""Provenance records: what produced a result, so a reviewer can audit and re-run it.

One record per rule run: rule, wildcards, inputs and outputs with sha256, params, config hash,
git commit and dirty flag, package versions, hardware, seed, start and end time.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from lmlab.core.io import sha256_tree, write_json

PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "tokenizers",
    "datasets",
    "snakemake",
    "numpy",
    "scipy",
    "jsonschema",
    "jinja2",
    "matplotlib",
    "bitsandbytes",
)


def config_hash(config):
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def git_state(repo_dir="."):
    """Commit and dirty flag of the checkout; results/ and logs are ignored by .gitignore."""
    def git(*args):
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions(names=PACKAGES):
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware():
    info = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "system": platform.system(),
    }
    # Torch's threads and GPUs, for the steps that ran torch: a bookkeeping step does not
    # import it (seconds per job) just to record it.
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


def hash_paths(paths):
    """sha256 of each existing file or folder (folders: hash of the sorted tree)."""
    return {str(p): sha256_tree(p) for p in paths if Path(p).exists()}


def build_record(rule, inputs, outputs, params, config, seed, started, wildcards=None):
    return {
        "rule": rule,
        "wildcards": dict(wildcards or {}),
        "inputs": hash_paths(inputs),
        "outputs": hash_paths(outputs),
        "params": params,
        "config_sha256": config_hash(config),
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.time() - started, 3),
    }


def write_record(path, record):
    write_json(path, record)
