"""Snakemake idiom: --lint prints nothing to fix, snakefmt is satisfied, every rule has
log, benchmark and conda, and the conda envs pin what requirements.txt pins."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, SNAKEMAKE

SNAKEFMT = str(Path(sys.executable).parent / "snakefmt")


def test_snakemake_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, output
    assert output == "" or "Congratulations" in output, output


def test_snakefmt_check():
    proc = subprocess.run([SNAKEFMT, "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def rule_blocks():
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", text, re.M | re.S):
            yield path.name, match.group(1), match.group(2)


def test_every_rule_has_log_benchmark_and_conda():
    blocks = list(rule_blocks())
    assert blocks
    for filename, name, body in blocks:
        for directive in ("log:", "benchmark:", "conda:"):
            assert directive in body, f"{filename}: rule {name} has no {directive}"


def pins(lines):
    found = {}
    for line in lines:
        line = line.strip().lstrip("- ").strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            found[name.lower().replace("_", "-")] = version.strip()
    return found


def test_env_pins_agree_with_requirements():
    required = {}
    for req in ("requirements.txt", "requirements-nodeps.txt"):
        required.update(pins((ROOT / req).read_text().splitlines()))
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        for name, version in pins(pip).items():
            assert name in required, f"{env.name}: {name} is not pinned in the requirements"
            assert required[name] == version, f"{env.name}: {name}=={version} but requirements pin {required[name]}"
