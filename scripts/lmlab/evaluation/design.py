"""The evaluation matrix: its axes, the models on it, the cells a design runs, and the
matrix table that lists every cell, in the design or not, ran or not.

The matrix has three generation axes, declared in config `evaluation`:
  - model: base, sft, dpo, orpo, rloo (named models; the rules map each to base + adapter,
    and a model whose training stage is not configured is not in the matrix);
  - prompt: short (minimal template), structured (the template the SFT adapter was trained
    on: the seed template, or the model's own chat template when SFT used `chat`),
    constrained (structured + the task's explicit format rule);
  - context: the maximum number of input tokens (prompts are cut from the left).
The agent arm is a fourth axis that the agents stage runs; the matrix file lists it so the
paper shows every cell in one place.

`design: ofat` (default) runs the reference cell and every cell that differs from it in
exactly one factor; `design: factorial` runs the full product. Every cell sees the same
items (a stratified, seeded subset of sft_test, see testset) with the same greedy decoding,
so any two cells can be compared item by item (see stats).

The rules import this module while Snakemake parses the workflow, so it stays light: the
standard library and lmlab.core only.
"""

import itertools
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import write_tsv

AXES = ("model", "prompt", "context")
# Presentation order of the models; also the order of pairwise comparisons (later - earlier).
# The alignment stage trains one RLOO policy per reward arm (rloo_rm, rloo_verifiable);
# the name `rloo` in config stands for all of them.
MODEL_ORDER = ("base", "sft", "dpo", "orpo", "rloo", "rloo_rm", "rloo_verifiable")
MODEL_FAMILIES = {"rloo": "rloo_"}
# The template name in a prompt spec that stands for "the SFT adapter's template".
SFT_TEMPLATE_ALIAS = "sft"
MATRIX_COLUMNS = ["model", "prompt", "context", "agent_arm", "stage", "in_design", "ran", "reason", "path"]


def baseline_of(model):
    """Whom a model is judged against for the win rate: the model it was trained from, and
    for a variant of the SFT adapter (sft-<variant>) the adapter it varies."""
    if model == "base":
        return None
    return "base" if model == "sft" else "sft"


def variant_of(model):
    """The model a variant name `<model>-<variant>` varies (sft-qlora -> sft), else None."""
    head, sep, _ = model.partition("-")
    return head if sep and head in MODEL_ORDER else None


def cell_id(cell):
    """`model/prompt/ctxN`: the cell's path fragment and its name in every table."""
    return f"{cell['model']}/{cell['prompt']}/ctx{cell['context']}"


def parse_cell_id(text):
    """The cell {model, prompt, context} of a `model/prompt/ctxN` id (inverse of cell_id)."""
    parts = text.split("/")
    return dict(zip(AXES, (parts[0], parts[1], int(parts[2][3:]))))


def generation_path(cell, generations_dir):
    return f"{generations_dir}/{cell_id(cell)}.jsonl"


def order_models(models):
    """Models in MODEL_ORDER first, each followed by its variants (sft, sft-qlora, dpo, ...) in
    the order given, then any others in the order given."""
    known = []
    for name in MODEL_ORDER:
        if name in models:
            known.append(name)
        known += [m for m in models if variant_of(m) == name and m not in known]
    return known + [m for m in models if m not in known]


def resolve_models(requested, available):
    """(matrix models, evaluated models): the config's model names with `rloo` expanded to
    the RLOO arms the alignment stage trains; a requested model whose stage is not
    configured stays in the matrix (as not run) but is not evaluated.

    `available` maps the names the rules know to their adapter folder ("" for the base).
    """
    matrix = []
    for name in requested:
        prefix = MODEL_FAMILIES.get(name)
        members = [m for m in available if prefix and m.startswith(prefix)] if prefix else []
        for member in members or [name]:
            if member not in matrix:
                matrix.append(member)
    matrix = order_models(matrix)
    return matrix, [m for m in matrix if m in available]


def resolve_prompt(spec, sft_template):
    """(template, constrained) of a prompt spec; template `sft` means the SFT adapter's."""
    template = sft_template if spec["template"] == SFT_TEMPLATE_ALIAS else spec["template"]
    return template, bool(spec.get("constrained", False))


def full_factorial(models, prompts, contexts):
    """Every (model, prompt, context) cell, in axis order."""
    return [
        {"model": m, "prompt": p, "context": int(c)}
        for m, p, c in itertools.product(models, prompts, contexts)
    ]


def reference_cell(models, prompts, contexts, reference):
    """The reference cell, with a missing reference model replaced by the last available of
    its fall-backs (sft -> base), so a run without SFT still has a reference."""
    ref = {"model": reference["model"], "prompt": reference["prompt"], "context": int(reference["context"])}
    if ref["model"] not in models:
        fallback = [m for m in order_models(models) if m in MODEL_ORDER and MODEL_ORDER.index(m) < MODEL_ORDER.index(ref["model"])] if (
            ref["model"] in MODEL_ORDER
        ) else []
        if not fallback:
            raise InputError(f"config: evaluation.reference.model: {ref['model']!r} is not among the models {list(models)}")
        ref["model"] = fallback[-1]
    if ref["prompt"] not in prompts:
        raise InputError(f"config: evaluation.reference.prompt: {ref['prompt']!r} is not among the prompts {list(prompts)}")
    if ref["context"] not in [int(c) for c in contexts]:
        raise InputError(f"config: evaluation.reference.context: {ref['context']} is not among the contexts {list(contexts)}")
    return ref


def design_cells(models, prompts, contexts, design, reference):
    """The cells the design runs, in factorial order.

    ofat: the reference cell plus every cell that differs from it in exactly one factor
    (1 + (M-1) + (P-1) + (C-1) cells); factorial: all M x P x C cells.
    """
    if not models:
        raise InputError("config: evaluation.models: no model is available to evaluate")
    cells = full_factorial(models, prompts, contexts)
    if design == "factorial":
        return cells
    if design != "ofat":
        raise InputError(f"config: evaluation.design: {design!r} is not one of ofat, factorial")
    ref = reference_cell(models, prompts, contexts, reference)
    return [c for c in cells if sum(c[a] != ref[a] for a in AXES) <= 1]


def differing_pairs(cells):
    """Pairs of cells that differ in exactly one factor: (factor, cell_a, cell_b), b earlier.

    Within the factor, a is the later level in the axis order (e.g. dpo - sft, ctx2048 - ctx256).
    """
    pairs = []
    for b, a in itertools.combinations(cells, 2):
        diff = [axis for axis in AXES if a[axis] != b[axis]]
        if len(diff) == 1:
            pairs.append((diff[0], a, b))
    return pairs


def matrix_rows(all_models, models, prompts, contexts, design, reference, generations_dir, agent_arms=(), exists=None):
    """One row per cell of the full factorial (models not configured included), plus the
    agent arms: model, prompt, context, agent_arm, stage, in_design, ran, reason, path.

    `all_models` are every model name the matrix knows; `models` those whose stage is
    configured. `exists(path)` tells whether a cell ran (default: the file exists).
    """
    exists = exists or (lambda p: Path(p).exists())
    in_design = {cell_id(c) for c in design_cells(models, prompts, contexts, design, reference)}
    ref = reference_cell(models, prompts, contexts, reference)
    rows = []
    for cell in full_factorial(order_models(all_models), prompts, contexts):
        path = generation_path(cell, generations_dir)
        if cell["model"] not in models:
            reason = "model's training stage is not configured"
        elif cell_id(cell) == cell_id(ref):
            reason = "reference cell"
        elif cell_id(cell) in in_design:
            reason = "varies " + next(a for a in AXES if cell[a] != ref[a])
        else:
            reason = f"not in the {design} design"
        rows.append(
            {
                **cell,
                "agent_arm": "none",
                "stage": "evaluation",
                "in_design": cell_id(cell) in in_design,
                "ran": bool(exists(path)),
                "reason": reason,
                "path": path,
            }
        )
    for arm in agent_arms:
        rows.append(
            {
                "model": arm.get("model", ""),
                "prompt": arm.get("prompt", ""),
                "context": arm.get("context", ""),
                "agent_arm": arm["arm"],
                "stage": "agents",
                "in_design": bool(arm.get("in_design", True)),
                # Without a path the agents stage has not said where its arm writes: unknown.
                "ran": bool(exists(arm["path"])) if arm.get("path") else None,
                "reason": "run by the agents stage",
                "path": arm.get("path", ""),
            }
        )
    return rows


def write_matrix(out_tsv, **kwargs):
    """Rule evaluation_matrix: results/evaluation/matrix.tsv (see matrix_rows)."""
    rows = matrix_rows(**kwargs)
    write_tsv(out_tsv, rows, MATRIX_COLUMNS)
    return rows


def judge_status(reward_model):
    """What the paper says about the judge: the learned reward model of the alignment stage
    (its folder), or why there is no win rate (judging turned off: `reward_model` is None;
    no other judge is substituted)."""
    if reward_model:
        return {
            "available": True,
            "judge": f"learned reward model {reward_model}",
            "order_note": (
                "A scalar reward model scores each response on its own, so judging a pair in "
                "both orders gives the same verdict; the position-sensitive judge shows both "
                "answers in one text and is averaged over both orders."
            ),
        }
    return {
        "available": False,
        "reason": (
            "No win rate: the learned reward model is not available in this run "
            "(evaluation.judge.enabled is false), and no other judge is substituted."
        ),
    }
