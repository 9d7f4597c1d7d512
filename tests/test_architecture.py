"""The library's shape (docs/ARCHITECTURE.md): no import cycles, imports only point down the
layers core <- models, data <- training <- stages <- paper, no lmlab import inside a
function, and every rule runs the step script of its own name, which imports its stage."""

import ast
import re
from collections import defaultdict

import pytest

from conftest import ROOT

LIB = ROOT / "scripts" / "lmlab"
LAYER = {"core": 0, "models": 1, "data": 1, "training": 2, "paper": 4}
STAGE_LAYER = 3  # context, sft, alignment, evaluation, agents


def module_name(path):
    parts = path.relative_to(ROOT / "scripts").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """{module: {imported lmlab module}}, from the source (nothing is imported)."""
    modules = {module_name(p): p for p in LIB.rglob("*.py")}
    edges = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                if base.startswith("lmlab"):
                    for alias in node.names:
                        target = f"{base}.{alias.name}"
                        edges[name].add(target if target in modules else base)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.startswith("lmlab"))
    return modules, {m: {t for t in ts if t in modules and t != m} for m, ts in edges.items()}


def find_cycle(edges):
    """One import cycle as a list of modules, or None (depth-first search with colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module):
    package = module.split(".")[1] if module.count(".") else ""
    return package, LAYER.get(package, STAGE_LAYER)


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    _, edges = import_graph()
    assert find_cycle(edges) is None


def test_imports_point_down_the_layers():
    _, edges = import_graph()
    wrong = []
    for source, targets in edges.items():
        source_package, source_layer = layer(source)
        for target in targets:
            target_package, target_layer = layer(target)
            if source_package == target_package:
                continue
            # A stage never imports another stage: what two share belongs in a lower layer.
            if target_layer > source_layer or (target_layer == source_layer and source_layer in (1, STAGE_LAYER)):
                wrong.append(f"{source} -> {target}")
    assert wrong == []


def test_no_lmlab_import_inside_a_function():
    modules, _ = import_graph()
    inner = []
    for name, path in modules.items():
        for func in ast.walk(ast.parse(path.read_text())):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("lmlab")):
                        inner.append(f"{name}.{func.name}")
                    if isinstance(node, ast.Import) and any(a.name.startswith("lmlab") for a in node.names):
                        inner.append(f"{name}.{func.name}")
    assert inner == []


RULE_FILES = sorted(p for p in (ROOT / "rules").glob("*.smk") if p.stem != "common")


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.stem)
def test_rule_runs_its_own_script_in_its_stage(rule_file):
    stage = rule_file.stem
    text = rule_file.read_text()
    rules = re.findall(r"^rule (\w+):(.*?)(?=^rule |\Z)", text, re.S | re.M)
    assert rules
    assert "globals()" not in text
    for rule, body in rules:
        assert rule == stage or rule.startswith(f"{stage}_"), rule
        script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', body)
        assert script and script.group(1) == rule, rule
        tree = ast.parse((ROOT / "scripts" / f"{rule}.py").read_text())
        stage_imports = {
            n.module.split(".")[1]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("lmlab.") and ".core" not in n.module
        }
        assert stage_imports == {stage}, (rule, stage_imports)
