"""The evaluation matrix: design expansion, one-factor pairs, the matrix table, model and prompt resolution."""

import pytest

from lmlab.core.errors import InputError
from lmlab.evaluation import design

MODELS = ["base", "sft", "dpo"]
PROMPTS = ["short", "structured", "constrained"]
CONTEXTS = [64, 512]
REF = {"model": "sft", "prompt": "structured", "context": 512}


def test_ofat_and_factorial_cell_counts():
    ofat = design.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", REF)
    factorial = design.design_cells(MODELS, PROMPTS, CONTEXTS, "factorial", REF)
    # Reference + the other levels of each factor, one factor at a time.
    assert len(ofat) == 1 + (3 - 1) + (3 - 1) + (2 - 1)
    assert len(factorial) == 3 * 3 * 2
    assert {design.cell_id(c) for c in ofat} <= {design.cell_id(c) for c in factorial}
    for cell in ofat:
        assert sum(cell[a] != REF[a] for a in design.AXES) <= 1
    assert len({design.cell_id(c) for c in ofat}) == len(ofat)


def test_ofat_comparisons_are_one_factor_pairs():
    ofat = design.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", REF)
    pairs = design.differing_pairs(ofat)
    by_factor = {}
    for factor, a, b in pairs:
        by_factor[factor] = by_factor.get(factor, 0) + 1
        assert [x for x in design.AXES if a[x] != b[x]] == [factor]
    # All pairs among the levels on each axis through the reference cell.
    assert by_factor == {"model": 3, "prompt": 3, "context": 1}
    factorial = design.design_cells(MODELS, PROMPTS, CONTEXTS, "factorial", REF)
    # Factorial: for each factor, pairs of its levels at every combination of the others.
    assert len(design.differing_pairs(factorial)) == 3 * 2 * 3 + 3 * 2 * 3 + 1 * 3 * 3


def test_reference_falls_back_to_base_without_sft():
    cells = design.design_cells(["base"], PROMPTS, CONTEXTS, "ofat", REF)
    assert {c["model"] for c in cells} == {"base"}
    assert len(cells) == 1 + 2 + 1
    with pytest.raises(InputError, match="reference.prompt"):
        design.design_cells(MODELS, PROMPTS, CONTEXTS, "ofat", {**REF, "prompt": "nope"})
    with pytest.raises(InputError, match="design"):
        design.design_cells(MODELS, PROMPTS, CONTEXTS, "latin-square", REF)


def test_matrix_rows_list_full_factorial_with_design_and_ran():
    ran = {design.generation_path({"model": "sft", "prompt": "structured", "context": 512}, "gen"),
           design.generation_path({"model": "base", "prompt": "short", "context": 64}, "gen")}
    rows = design.matrix_rows(
        all_models=MODELS + ["orpo"],
        models=MODELS,
        prompts=PROMPTS,
        contexts=CONTEXTS,
        design="ofat",
        reference=REF,
        generations_dir="gen",
        agent_arms=[{"arm": "react", "model": "sft", "path": "results/agents/react/traces.jsonl"}],
        exists=lambda p: p in ran,
    )
    cells = [r for r in rows if r["stage"] == "evaluation"]
    assert len(cells) == 4 * 3 * 2  # orpo is listed although its stage is not configured
    assert sum(r["in_design"] for r in cells) == 6
    assert not any(r["in_design"] for r in cells if r["model"] == "orpo")
    assert sum(r["ran"] for r in cells) == 2
    # A cell outside the design can have run (e.g. an earlier factorial run).
    off_design = [r for r in cells if r["ran"] and not r["in_design"]]
    assert [(r["model"], r["prompt"], r["context"]) for r in off_design] == [("base", "short", 64)]
    agents = [r for r in rows if r["stage"] == "agents"]
    assert agents and agents[0]["agent_arm"] == "react" and not agents[0]["ran"]


def test_resolve_models_expands_rloo_and_drops_unconfigured():
    available = {"base": "", "sft": "s", "dpo": "d", "rloo_rm": "r1", "rloo_verifiable": "r2"}
    matrix, evaluated = design.resolve_models(["base", "sft", "dpo", "orpo", "rloo"], available)
    assert matrix == ["base", "sft", "dpo", "orpo", "rloo_rm", "rloo_verifiable"]
    assert evaluated == ["base", "sft", "dpo", "rloo_rm", "rloo_verifiable"]
    matrix, evaluated = design.resolve_models(["base", "rloo"], {"base": ""})
    assert matrix == ["base", "rloo"] and evaluated == ["base"]
    assert design.baseline_of("sft") == "base" and design.baseline_of("rloo_rm") == "sft" and design.baseline_of("base") is None


def test_resolve_prompt_maps_sft_alias():
    assert design.resolve_prompt({"template": "sft", "constrained": True}, "chat") == ("chat", True)
    assert design.resolve_prompt({"template": "minimal"}, "chat") == ("minimal", False)
