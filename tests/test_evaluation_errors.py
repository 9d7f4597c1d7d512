"""The rule-based error classifier: one hand-made generation per error type, and the table."""

import json

import pytest

from lmlab.evaluation import errors as et
from lmlab.evaluation.score import score_rows
from lmlab.core.io import read_json, read_tsv, write_jsonl

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "city"],
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
}
KB_INPUT = "Context:\nVelmora Foods was founded by Ana Tressel in Brunmere.\n\nQuestion: Who founded Velmora Foods?"


def row(task, prediction, gold, meta=None, **extra):
    base = {
        "id": f"{task}-1",
        "task": task,
        "lang": "en",
        "meta": {"should_refuse": False, **(meta or {})},
        "instruction": "Do the task.",
        "input": "",
        "prompt": "Do the task.\nAnswer: ",
        "prompt_tokens": 6,
        "prediction": prediction,
        "gold": gold,
        "tokens_in": 6,
        "tokens_out": max(1, len(prediction.split())),
        "truncated": False,
        "stopped_at_eos": True,
        "latency_s": 0.1,
        "decoding": {"max_new_tokens": 64},
        "context": 2048,
    }
    base.update(extra)
    return base


DOC = "Filler sentence about rivers. " * 20 + "The secret ingredient is smoked paprika. " + "More filler. " * 10
CASES = {
    "missing_refusal": row("refusal", "Sure, the 16th month is called Smarch.", "I cannot answer: a year has twelve months.",
                           {"should_refuse": True, "reason": "invalid"}),
    "needless_refusal": row("arithmetic", "I'm sorry, but I cannot help with that.", "12", {"answer": "12"}),
    "truncation": row(
        "long_context_qa",
        "The river.",
        "smoked paprika",
        {"answer": "smoked paprika"},
        instruction="Answer from the document.\nQuestion: What is the secret ingredient?",
        input=DOC,
        # Cut from the left: the question and the answer sentence are gone.
        prompt="More filler. " * 10 + "\nAnswer: ",
        truncated=True,
        prompt_tokens=400,
        tokens_in=64,
        context=64,
    ),
    "incomplete": row("json_extraction", '{"name": "Ana Tressel", "ci', '{"name":"Ana Tressel","city":"Brunmere"}',
                      {"schema": SCHEMA}, stopped_at_eos=False, tokens_out=12, decoding={"max_new_tokens": 12}),
    "format": row("sentiment", "I liked reading it.", "positive", {"label": "positive"}),
    "hallucinated_entity": row("kb_qa", "Velmora Foods was founded by Marco Quillan.", "Ana Tressel",
                               {"answer": "Ana Tressel", "kb_ids": ["kb-1"]}, input=KB_INPUT),
    "over_long": row("sentiment", "negative " + "because the review goes on and on about many things " * 3, "positive",
                     {"label": "positive"}),
    "wrong_answer": row("arithmetic", "13", "12", {"answer": "12"}),
}


@pytest.mark.parametrize("expected", et.ERROR_TYPES)
def test_each_error_type_is_recognised(expected):
    generation = CASES[expected]
    scored = score_rows([generation], rouge_threshold=0.4)[0]
    found = et.classify(generation, scored)
    assert found is not None, expected
    error_type, cause, fix = found
    assert error_type == expected, (expected, cause)
    assert cause and fix


def test_correct_answers_are_not_errors_unless_over_long():
    fine = row("arithmetic", "12", "12", {"answer": "12"})
    assert et.classify(fine, score_rows([fine], 0.4)[0]) is None
    chatty = row("arithmetic", "12 " + "and here is a very long explanation of the sum " * 3, "12", {"answer": "12"})
    assert et.classify(chatty, score_rows([chatty], 0.4)[0])[0] == "over_long"


def test_cut_off_is_blamed_only_when_more_tokens_could_help():
    wrong_label = row("sentiment", "negative, because the seller never", "positive", {"label": "positive"},
                      stopped_at_eos=False, tokens_out=8, decoding={"max_new_tokens": 8})
    assert et.classify(wrong_label, score_rows([wrong_label], 0.4)[0])[0] == "wrong_answer"
    unfinished = dict(wrong_label, prediction="The review sounds")
    assert et.classify(unfinished, score_rows([unfinished], 0.4)[0])[0] == "incomplete"


def test_invented_names_are_flagged_even_when_the_span_is_right():
    generation = row("kb_qa", "Ana Tressel, who moved to New Zealand.", "Ana Tressel",
                     {"answer": "Ana Tressel", "kb_ids": ["kb-1"]}, input=KB_INPUT)
    scored = score_rows([generation], 0.4)[0]
    assert scored["correct"]
    error_type, cause, _ = et.classify(generation, scored)
    assert error_type == "hallucinated_entity" and "Zealand" in cause


def test_truncation_needs_lost_evidence():
    kept = dict(CASES["truncation"], prompt="Answer from the document.\nQuestion: What is the secret ingredient?\n" + DOC)
    assert et.lost_evidence(kept) == []
    assert "smoked paprika" in et.lost_evidence(CASES["truncation"])
    scored = score_rows([kept], 0.4)[0]
    assert et.classify(kept, scored)[0] == "wrong_answer"


def test_hallucinated_entities_ignore_names_in_input_and_common_words():
    assert et.hallucinated_entities("The founder is Ana Tressel.", [KB_INPUT]) == []
    assert et.hallucinated_entities("According to Marco Quillan, yes.", [KB_INPUT]) == ["Marco", "Quillan"]


def test_error_analysis_table_counts_and_examples(tmp_path):
    cells, gens, mets = [], [], []
    for k, model in enumerate(("base", "sft")):
        cell = {"model": model, "prompt": "structured", "context": 2048}
        rows = [dict(CASES[t], id=f"{t}-{model}") for t in et.ERROR_TYPES]
        rows.append(dict(row("arithmetic", "12", "12", {"answer": "12"}), id=f"ok-{model}"))
        if k == 1:
            rows = rows[1:]  # sft has no missing_refusal
        gen = tmp_path / f"gen-{model}.jsonl"
        write_jsonl(gen, rows)
        met = tmp_path / f"met-{model}.jsonl"
        write_jsonl(met, score_rows(rows, 0.4))
        cells.append(cell)
        gens.append(gen)
        mets.append(met)
    summary = et.error_analysis(cells, gens, mets, tmp_path / "errors" / "error_table.tsv",
                                tmp_path / "errors" / "summary.json", reference=cells[0], overlong_factor=2.0,
                                overlong_slack_words=10, examples_per_type=2, seed=1)
    table = read_tsv(tmp_path / "errors" / "error_table.tsv")
    assert list(table[0])[:9] == ["id", "task", "model", "prompt", "prediction", "gold", "error_type",
                                  "probable_cause", "proposed_fix"]
    assert len(table) == 8 + 7
    assert summary["by_model"]["base"]["missing_refusal"] == 1 and summary["by_model"]["sft"]["missing_refusal"] == 0
    assert all(summary["by_model"]["base"][t] == 1 for t in et.ERROR_TYPES)
    assert summary["by_model"]["base"]["n_items"] == 9
    assert all(1 <= len(summary["examples"][t]) <= 2 for t in et.ERROR_TYPES)
    counts = read_tsv(tmp_path / "errors" / "tables" / "errors_counts.tsv")
    assert [r["model"] for r in counts] == ["base", "sft"] and counts[1]["total"] == "7"
    json.dumps(read_json(tmp_path / "errors" / "summary.json"), allow_nan=False)
