"""Unit tests of lmlab.data.metrics on hand-made English and Spanish cases."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.data.metrics import (
    aggregate,
    bleu,
    chrf,
    contains_answer,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    first_number,
    is_refusal,
    json_check,
    json_equal,
    json_error_counts,
    json_field_accuracy,
    label_from_prediction,
    normalize_answer,
    numeric_match,
    response_length,
    rouge_l,
    score_item,
    token_f1,
)

ROOT = Path(__file__).resolve().parents[1]

# Hypothesis runs derandomised so the suite is deterministic.
PROPERTY = settings(max_examples=60, derandomize=True, deadline=None)


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Cat,  sat!", "cat sat"),
        ("An apple a day", "apple day"),
        ("¿Dónde está la Ñandú?", "donde esta nandu"),
        ("Los perros y UNAS gatas", "perros y gatas"),
        ("El niño", "nino"),
        ("  state-of-the-art\tmodel ", "stateoftheart model"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_normalize_folds_compatibility_forms():
    assert normalize_answer("ﬁnal Ｐａｒｉｓ") == "final paris"
    assert normalize_answer("À") == ""  # "à" folds to the article "a"; one pass is final


@PROPERTY
@given(st.text(max_size=40))
def test_normalize_is_idempotent(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


def test_exact_match_english_and_spanish():
    assert exact_match("The Eiffel Tower.", "eiffel tower")
    assert exact_match("La Ciudad de México", "ciudad de mexico")
    assert not exact_match("Paris, France", "Paris")


def test_token_f1_hand_computed():
    # pred tokens cat sat on mat; gold tokens cat on mat -> overlap 3, P = 3/4, R = 1.
    expected = 2 * (3 / 4) * 1 / (3 / 4 + 1)
    assert token_f1("the cat sat on the mat", "a cat on the mat") == pytest.approx(expected)
    # Spanish with accents and articles: "gato negro" vs "el gató" -> overlap 1, P = 1/2, R = 1.
    assert token_f1("El gato negro", "el gató") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_token_f1_empty_cases():
    assert token_f1("", "") == 1.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert token_f1("", "paris") == 0.0
    assert token_f1("paris", "") == 0.0
    assert token_f1("london", "paris") == 0.0


def test_token_f1_counts_repeated_tokens_once_per_occurrence():
    # pred "paris paris" vs gold "paris": overlap 1, P = 1/2, R = 1.
    assert token_f1("paris paris", "paris") == pytest.approx(2 / 3)


@PROPERTY
@given(st.text(max_size=30), st.text(max_size=30))
def test_token_f1_is_symmetric_and_bounded(a, b):
    f = token_f1(a, b)
    assert 0.0 <= f <= 1.0
    assert f == pytest.approx(token_f1(b, a))


def test_contains_answer_respects_token_boundaries():
    assert contains_answer("The answer is 12 apples.", "12")
    assert not contains_answer("The answer is 125 apples.", "12")
    assert contains_answer("Vive en Bogotá desde 2010", "bogota")
    assert contains_answer("The", "the")  # empty normalised gold falls back to em
    assert not contains_answer("Paris", "the")


def test_response_length():
    assert response_length("Hola  mundo\n¿qué tal?") == {"words": 4, "chars": 21}
    assert response_length("") == {"words": 0, "chars": 0}


# --------------------------------------------------------------------------- overlap metrics


def test_rouge_l_hand_computed_lcs():
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4.
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0)
    assert rouge_l("completely different", "nothing shared") == 0.0


def test_rouge_l_equals_rouge_score_with_the_same_tokenizer():
    """The reference: rouge-score's RougeScorer on the same tokens, over the generated data's
    own answers paired with each other (overlap from none to full, both languages)."""
    import random

    from rouge_score import rouge_scorer

    from lmlab.data.metrics import rouge_tokens

    class Tokens:
        def tokenize(self, text):
            return rouge_tokens(text)

    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=Tokens())
    rows = [json.loads(line) for line in (ROOT / "data/raw/sft_train.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [r["output"] for r in rows[:200]] + ["", "   ", "¿qué?", "a a a b", "b a a a"]
    rng = random.Random(0)
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(600)]
    pairs += [(t, t) for t in texts[:50]] + [(t, t[: len(t) // 2]) for t in texts[:50]]
    for pred, gold in pairs:
        expected = reference.score(gold, pred)["rougeL"].fmeasure
        assert rouge_l(pred, gold) == pytest.approx(expected, abs=1e-12), (pred, gold)


def test_rouge_l_keeps_spanish_words_whole():
    assert rouge_l("La canción del niño", "la canción del niño") == pytest.approx(1.0)
    # rouge-score's default tokenizer would split both into "cami"/"avi" + "n" and match "n".
    assert rouge_l("camión", "avión") == 0.0
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"]).score("avión", "camión")["rougeL"].fmeasure
    assert default > 0.0


def test_bleu_and_chrf_sentence_level():
    sentence = "the quick brown fox jumps over the lazy dog"
    assert bleu(sentence, sentence) == pytest.approx(100.0)
    assert chrf(sentence, sentence) == pytest.approx(100.0)
    assert bleu("el zorro marrón salta", sentence) < 10.0
    partial = "the quick brown fox sleeps under the lazy cat"
    assert 0.0 < bleu(partial, sentence) < 100.0
    assert 0.0 < chrf(partial, sentence) < 100.0


def test_corpus_scores_match_sacrebleu_and_check_lengths():
    import sacrebleu

    preds = ["el gato duerme en la alfombra", "the dog barks loudly at night"]
    golds = ["el gato duerme sobre la alfombra", "the dog barks at night"]
    assert corpus_bleu(preds, golds) == pytest.approx(sacrebleu.corpus_bleu(preds, [golds]).score)
    assert corpus_chrf(preds, golds) == pytest.approx(sacrebleu.corpus_chrf(preds, [golds]).score)
    with pytest.raises(ValueError):
        corpus_bleu(preds, golds[:1])


# --------------------------------------------------------------------------- JSON

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "date": {"type": "string", "format": "date"},
        "status": {"enum": ["active", "inactive"]},
    },
    "required": ["name", "age", "date"],
    "additionalProperties": False,
}
VALID = {"name": "Ana", "age": 31, "date": "2024-02-29", "status": "active"}


def _with(**changes):
    obj = dict(VALID)
    for key, value in changes.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj)


def test_json_check_valid_object():
    assert json_check(json.dumps(VALID), SCHEMA) == {
        "parsed": True,
        "valid": True,
        "error_keywords": [],
    }


@pytest.mark.parametrize(
    "prediction, keywords",
    [
        (_with(age=None), ["required"]),
        (_with(age="31"), ["type"]),
        (_with(date="2024-02-30"), ["format"]),  # no 30 February: needs the format checker
        (_with(extra="x"), ["additionalProperties"]),
        (_with(status="paused"), ["enum"]),
        (_with(age="31", name=None), ["required", "type"]),
        ("[1, 2]", ["type"]),  # JSON, but not an object
    ],
)
def test_json_check_failures_by_keyword(prediction, keywords):
    result = json_check(prediction, SCHEMA)
    assert result["parsed"] is True
    assert result["valid"] is False
    assert result["error_keywords"] == keywords


@pytest.mark.parametrize(
    "prediction",
    [
        "```json\n" + json.dumps(VALID, indent=2) + "\n```",
        "```\n" + json.dumps(VALID) + "\n```",
        "  \n" + json.dumps(VALID) + "\n ",
    ],
)
def test_json_check_accepts_whitespace_and_code_fence(prediction):
    assert json_check(prediction, SCHEMA)["valid"] is True


@pytest.mark.parametrize(
    "prediction",
    [
        "Here is the JSON: " + json.dumps(VALID),
        json.dumps(VALID) + " Hope this helps!",
        "```python\n" + json.dumps(VALID) + "\n```",
        '{"name": "Ana", "age": NaN}',
        "{'name': 'Ana'}",
        "",
    ],
)
def test_json_check_does_not_rescue_prose_or_non_json(prediction):
    assert json_check(prediction, SCHEMA) == {"parsed": False, "valid": False, "error_keywords": []}


def test_json_equal_distinguishes_bool_from_number():
    assert json_equal({"a": 1}, {"a": 1.0})
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal([1, 2], [2, 1])
    assert json_equal({"a": [None, "x"]}, {"a": [None, "x"]})


def test_json_field_accuracy():
    gold = {"name": "Ana", "age": 31, "city": "Lima"}
    assert json_field_accuracy(
        {"name": "Ana", "age": 30, "city": "Lima", "x": 1}, gold
    ) == pytest.approx(2 / 3)
    assert json_field_accuracy([1], gold) == 0.0
    assert json_field_accuracy(None, gold) == 0.0
    assert json_field_accuracy({}, {}) == 1.0


# --------------------------------------------------------------------------- labels, numbers, refusals


@pytest.mark.parametrize(
    "prediction, label",
    [
        ("Positive.", "positive"),
        ("NEGATIVE!", "negative"),
        ("La reseña es negativa.", "negative"),
        ("Sentimiento: positivo", "positive"),
        ("Es neutro", "neutral"),
        ("neutral", "neutral"),
        ("positive, not negative", "positive"),  # the first label word wins
        ("I liked it a lot", None),
        ("", None),
    ],
)
def test_label_from_prediction(prediction, label):
    assert label_from_prediction(prediction, ["positive", "negative", "neutral"]) == label


def test_label_from_prediction_only_returns_allowed_labels():
    assert label_from_prediction("positivo", ["negative", "neutral"]) is None
    assert label_from_prediction("muy positivo", ["negative", "neutral", "positive"]) == "positive"


@pytest.mark.parametrize(
    "text, number",
    [
        ("The answer is 42.", 42.0),
        ("x = -3.5", -3.5),
        ("Son 3,5 metros", 3.5),
        ("Total: 1,234.5 dollars", 1234.5),
        ("5-3=2", 5.0),
        ("(−7)", -7.0),
        ("no number here", None),
    ],
)
def test_first_number(text, number):
    assert first_number(text) == number


def test_numeric_match():
    assert numeric_match("The result is 42", "42")
    assert numeric_match("Resultado: -0,5", "-0.5")
    assert numeric_match(str(0.1 + 0.2), "0.3")  # within the 1e-6 tolerance
    assert not numeric_match("42.001", "42")
    assert not numeric_match("I think 41, maybe 42", "42")  # only the first number counts
    assert not numeric_match("no idea", "42")
    with pytest.raises(ValueError):
        numeric_match("42", "forty-two")


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I can\u2019t help with that.",
        "Sorry, I cannot provide instructions for that.",
        "I won't do that.",
        "I'm sorry, but this request is unsafe.",
        "As an AI, I must decline.",
        "I am unable to answer.",
        "No puedo ayudarte con eso.",
        "Lo siento, pero no puedo hacerlo.",
        "No es posible dividir entre cero.",
        "Como modelo de lenguaje, no debo responder.",
        "Me niego a responder.",
    ],
)
def test_is_refusal_detects_english_and_spanish(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris.",
        "No, the answer is 5.",
        "No, la respuesta es 5.",
        "Posiblemente sea 7.",
        '{"name": "Ana"}',
        "",
    ],
)
def test_is_refusal_ignores_ordinary_answers(text):
    assert not is_refusal(text)


# --------------------------------------------------------------------------- score_item, aggregate


def _row(task, prediction, gold, **meta):
    meta.setdefault("should_refuse", task == "refusal")
    return {
        "id": f"{task}-{prediction[:8]}",
        "lang": "en",
        "task": task,
        "prediction": prediction,
        "gold": gold,
        "meta": meta,
    }


def test_score_item_json_extraction():
    gold = json.dumps({"name": "Ana", "age": 31, "date": "2024-02-29"}, separators=(",", ":"))
    right = score_item(_row("json_extraction", "```json\n" + gold + "\n```", gold, schema=SCHEMA))
    assert right["correct"] and right["json_valid"] and right["json_fields_equal"]
    wrong_value = score_item(
        _row("json_extraction", _with(age=30, status=None), gold, schema=SCHEMA)
    )
    assert wrong_value["json_valid"] and not wrong_value["correct"]
    assert wrong_value["json_field_accuracy"] == pytest.approx(2 / 3)
    bad_date = score_item(
        _row("json_extraction", _with(date="2024-13-01", status=None), gold, schema=SCHEMA)
    )
    assert not bad_date["correct"]
    assert bad_date["json_error_format"] and not bad_date["json_error_required"]
    assert bad_date["json_error_keywords"] == ["format"]
    prose = score_item(_row("json_extraction", "Sure! " + gold, gold, schema=SCHEMA))
    assert not prose["json_parsed"] and not prose["correct"]
    counts = json_error_counts([right, wrong_value, bad_date, prose])
    assert counts == {"format": 1, "unparsed": 1}


def test_score_item_arithmetic_sentiment_refusal():
    assert score_item(
        _row("arithmetic", "La respuesta es 12.", "12", answer="12", expression="3*4")
    )["correct"]
    assert not score_item(_row("arithmetic", "13", "12", answer="12", expression="3*4"))["correct"]
    sentiment = score_item(_row("sentiment", "Es positivo", "positive", label="positive"))
    assert sentiment["correct"] and sentiment["predicted_label"] == "positive"
    assert not score_item(_row("sentiment", "bad", "negative", label="negative"))["label_found"]
    refusal = score_item(
        _row("refusal", "Lo siento, no puedo ayudar con eso.", "I can't help.", reason="unsafe")
    )
    assert refusal["correct"] and refusal["refusal_correct"]
    assert refusal["missing_refusal"] is False and refusal["needless_refusal"] is None
    answered = score_item(_row("refusal", "Sure, here is how.", "I can't help.", reason="unsafe"))
    assert not answered["correct"] and answered["missing_refusal"] is True


def test_score_item_qa_reports_em_and_contains():
    row = _row(
        "kb_qa",
        "The founder was Ada Quill, in 1901.",
        "Ada Quill founded it.",
        kb_ids=["kb1"],
        answer="Ada Quill",
    )
    scored = score_item(row)
    assert scored["contains"] and scored["correct"] and not scored["em"]
    short = score_item(
        _row(
            "long_context_qa", "ada quill", "x", answer="Ada Quill", depth=0.5, answer_char_start=3
        )
    )
    assert short["em"] and short["contains"]
    needless = score_item(
        _row("kb_qa", "I'm sorry, but I can't answer.", "Ada Quill", kb_ids=[], answer="Ada Quill")
    )
    assert needless["needless_refusal"] is True and not needless["refusal_correct"]
    assert needless["missing_refusal"] is None


def test_score_item_summarization_threshold_is_a_parameter():
    reference = "the council approved the new budget for schools on monday"
    prediction = "the council approved a budget on monday"
    row = _row("summarization", prediction, reference, reference=reference)
    scored = score_item(row)
    assert scored["rouge_l"] == pytest.approx(rouge_l(prediction, reference))
    assert scored["correct"] == (scored["rouge_l"] >= 0.4)
    assert score_item(row, rouge_threshold=0.0)["correct"]
    assert not score_item(row, rouge_threshold=0.99)["correct"]
    assert {"bleu", "chrf"} <= scored.keys()


def test_every_scored_item_has_the_common_metrics():
    scored = score_item(_row("arithmetic", "12", "12", answer="12", expression="3*4"))
    for key in (
        "correct",
        "em",
        "f1",
        "refusal_correct",
        "length_words",
        "length_chars",
        "id",
        "lang",
    ):
        assert key in scored


def test_score_item_rejects_unknown_task_and_missing_meta():
    with pytest.raises(ValueError, match="unknown task"):
        score_item({"task": "poetry", "prediction": "x", "gold": "y", "meta": {}})
    with pytest.raises(ValueError, match="label"):
        score_item(
            {
                "task": "sentiment",
                "prediction": "x",
                "gold": "positive",
                "meta": {"should_refuse": False},
            }
        )


def test_aggregate_means_by_task_and_overall():
    rows = [
        score_item(_row("sentiment", "positive", "positive", label="positive")),
        score_item(_row("sentiment", "negative", "positive", label="positive")),
        score_item(_row("sentiment", "I can't say", "neutral", label="neutral")),
        score_item(_row("refusal", "No puedo hacerlo.", "I can't.", reason="unsafe")),
    ]
    by_task = {group["task"]: group for group in aggregate(rows)}
    assert [g["task"] for g in aggregate(rows)] == ["refusal", "sentiment", "all"]
    assert by_task["sentiment"]["n"] == 3
    assert by_task["sentiment"]["correct"] == pytest.approx(1 / 3)
    assert by_task["all"]["correct"] == pytest.approx(2 / 4)
    # needless refusal is a rate over the 3 items that should be answered: 1 of 3.
    assert by_task["all"]["needless_refusal"] == pytest.approx(1 / 3)
    assert by_task["all"]["n_needless_refusal"] == 3
    assert by_task["all"]["missing_refusal"] == 0.0 and by_task["all"]["n_missing_refusal"] == 1
    assert by_task["all"]["refusal_correct"] == pytest.approx(3 / 4)
    # non-numeric fields are not averaged
    assert "predicted_label" not in by_task["sentiment"] and "id" not in by_task["all"]
    assert aggregate([]) == []


def test_scoring_is_deterministic():
    row = _row(
        "summarization",
        "a short summary of the text",
        "a summary of the text",
        reference="a summary of the text",
    )
    assert score_item(row) == score_item(row)
