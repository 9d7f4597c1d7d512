"""Scores of one response without a model: the heuristic scorer and the gold score.

The heuristic scorer (`heuristic_score`) is the seed notebook's kind of reward: format
validity, refusal appropriateness, a length penalty and a penalty for absolute-claim words.
It needs no gold answer, so it can score any (prompt, response), and it is the baseline
the learned reward model is compared against.

The gold score (`gold_score`) scores a sampled answer of an sft row against its gold answer
(`lmlab.data.metrics`): the on-policy pair sampler ranks samples with it, and it is
RLOO's verifiable reward.
"""

import re

from lmlab.core.text import fold
from lmlab.data import metrics

# --------------------------------------------------------------------------- heuristic scorer

# Claim markers: words that assert more than a short answer can support. Absolute words
# ("always", "guaranteed", "100%") as in the seed notebook's heuristic, plus superlatives and
# appeals to authority ("the largest", "most", "experts", "official records"), which is how
# unsupported additions to an answer usually read. English and Spanish, matched on whole
# words after casefolding and stripping accents.
ABSOLUTE_CLAIMS = (
    "always", "never", "guaranteed", "guarantee", "definitely", "certainly", "undoubtedly",
    "absolutely", "proven", "100%", "without a doubt", "clearly", "obviously",
    "most", "largest", "biggest", "best", "greatest", "first", "strongly", "experts", "official",
    "siempre", "nunca", "garantizado", "garantizada", "definitivamente", "indudablemente",
    "absolutamente", "demostrado", "sin duda", "claramente", "obviamente",
    "mas", "mayor", "mayoria", "mejor", "primera", "primer", "primero", "expertos", "oficial", "oficiales",
)
_CLAIMS = re.compile(r"(?<![\w%])(?:" + "|".join(re.escape(w) for w in ABSOLUTE_CLAIMS) + r")(?![\w%])")

# Words a good answer of each task needs at most (the task's format rule in
# lmlab.models.templates.FORMAT_CONSTRAINTS where it names one); longer answers pay a length penalty.
LENGTH_BUDGET_WORDS = {
    "json_extraction": 60,
    "arithmetic": 4,
    "sentiment": 2,
    "summarization": 25,
    "kb_qa": 12,
    "long_context_qa": 12,
    "refusal": 30,
}
DEFAULT_BUDGET_WORDS = 40

# Weights of the heuristic's parts. Format and refusal are pass/fail, so they dominate;
# length and claims are graded penalties, each capped at two units.
HEURISTIC_WEIGHTS = {"format": 1.0, "refusal": 1.0, "length": 0.5, "claims": 0.5}

_NUMBER_ONLY = re.compile(r"[-+\u2212]?\d+(?:[.,]\d+)?\.?")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s", re.MULTILINE)


def absolute_claims(text):
    """How many claim markers the response uses."""
    return len(_CLAIMS.findall(fold(text)))


def format_valid(task, response):
    """Does the response follow its task's declared output format (no gold needed)?

    The rules are those of `lmlab.models.templates.FORMAT_CONSTRAINTS`: a JSON object only (a code
    fence is tolerated), the final number only, one English label word, one sentence with no
    list, a short one-line answer.
    """
    text = response.strip()
    if not text:
        return False
    if task == "json_extraction":
        parsed, value = metrics.parse_json_prediction(text)
        return parsed and isinstance(value, dict)
    if task == "arithmetic":
        return _NUMBER_ONLY.fullmatch(text) is not None
    if task == "sentiment":
        return text.casefold() in metrics.SENTIMENT_LABELS
    if task == "summarization":
        return "\n" not in text and not _BULLET.search(text) and len(_SENTENCE_END.findall(text)) <= 1
    if task in ("kb_qa", "long_context_qa"):
        return "\n" not in text and len(text.split()) <= LENGTH_BUDGET_WORDS[task]
    return True


def heuristic_components(response, task):
    words = len(response.split())
    budget = LENGTH_BUDGET_WORDS.get(task, DEFAULT_BUDGET_WORDS)
    refused = metrics.is_refusal(response)
    should_refuse = task == "refusal"
    return {
        # A refusal is the right format for a refusal item and the wrong one elsewhere.
        "format_ok": refused if should_refuse else (not refused and format_valid(task, response)),
        "refusal_ok": refused == should_refuse,
        "over_length": max(0.0, (words - budget) / budget),
        "claims": absolute_claims(response),
    }


def heuristic_score(response, task):
    """Gold-free reward: + format, + appropriate refusal, - length overrun, - absolute claims."""
    c = heuristic_components(response, task)
    w = HEURISTIC_WEIGHTS
    return (
        w["format"] * c["format_ok"]
        + w["refusal"] * c["refusal_ok"]
        - w["length"] * min(c["over_length"], 2.0)
        - w["claims"] * min(c["claims"], 2)
    )


# --------------------------------------------------------------------------- gold scoring

# Weights of the gold score of an on-policy sample: correctness first, then format, then a
# penalty for answers far longer than the gold.
GOLD_WEIGHTS = {"correct": 1.0, "format": 0.5, "over_long": 0.25}


def gold_score(row, prediction):
    """Score one sampled answer of an sft row against its gold (uses lmlab.data.metrics).

    Returns the score and why it lost points: `failure` is the first of wrong_format,
    needless_refusal, factual_error, over_long that applies (None for a perfect answer).
    """
    meta = row.get("meta") or {}
    scored = metrics.score_item({"task": row["task"], "prediction": prediction, "gold": row["output"], "meta": meta})
    task = row["task"]
    if task == "json_extraction":
        fmt = bool(scored["json_valid"])
    elif task == "refusal":
        fmt = bool(scored["refused"])
    else:
        fmt = format_valid(task, prediction) and not scored["refused"]
    gold_words = len(row["output"].split())
    words = len(prediction.split())
    over_long = words > max(2 * gold_words, gold_words + 10)
    correct = bool(scored["correct"])
    score = GOLD_WEIGHTS["correct"] * correct + GOLD_WEIGHTS["format"] * fmt - GOLD_WEIGHTS["over_long"] * over_long
    if not fmt and not (scored["refused"] and not scored["should_refuse"]):
        failure = "wrong_format"
    elif scored["refused"] and not scored["should_refuse"]:
        failure = "needless_refusal"
    elif not correct:
        failure = "factual_error"
    elif over_long:
        failure = "over_long"
    else:
        failure = None
    return {"score": score, "correct": correct, "format_valid": fmt, "over_long": over_long,
            "refused": bool(scored["refused"]), "words": words, "failure": failure}
