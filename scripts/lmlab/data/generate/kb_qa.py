"""The kb_qa task family: a question about one fact of a knowledge-base document, answered
from the passages in the prompt; and the split of (document, fact) pairs between test,
validation and train."""

from __future__ import annotations

import random

from lmlab.data.generate.common import SFT_ROWS_PER_TASK
from lmlab.data.generate.kb import KB_QUESTIONS, kb_fact_keys
from lmlab.data.tasks import LANGS


KB_QA_INSTRUCTIONS = {
    "en": ["Answer the question using only the context. Reply with a short answer.",
           "Read the context and answer the question briefly.",
           "Using the passages below, give a short answer to the question."],
    "es": ["Responde a la pregunta usando solo el contexto. Da una respuesta breve.",
           "Lee el contexto y responde brevemente a la pregunta.",
           "Con los textos de abajo, da una respuesta corta a la pregunta."],
}


def kb_passage(fact: dict) -> str:
    return f"{fact['name']}\n{fact['text']}"


def make_kb_qa(rng: random.Random, lang: str, facts: list[dict], pairs: list[tuple[int, str]]) -> dict:
    """A question about one fact of one KB document; half the items add a second, distracting
    document whose value for that fact differs."""
    index, key = rng.choice([pair for pair in pairs if facts[pair[0]]["lang"] == lang])
    fact = facts[index]
    question = rng.choice(KB_QUESTIONS[lang][key]).format(name=fact["name"])
    passages = [fact]
    if rng.random() < 0.5:
        others = [f for f in facts if f["lang"] == lang and f["id"] != fact["id"] and f[key] != fact[key]
                  and fact[key] not in f["text"]]
        passages.insert(rng.randint(0, 1), rng.choice(others))
    context = "\n\n".join(kb_passage(p) for p in passages)
    label = ("Context", "Question") if lang == "en" else ("Contexto", "Pregunta")
    return {
        "task": "kb_qa",
        "instruction": rng.choice(KB_QA_INSTRUCTIONS[lang]),
        "input": f"{label[0]}:\n{context}\n\n{label[1]}: {question}",
        "output": fact[key],
        "meta": {"kb_ids": [fact["id"]], "answer": fact[key], "should_refuse": False},
        "_wrong": [p for p in passages if p["id"] != fact["id"]][0][key] if len(passages) > 1 else None,
        "_fact_key": key,
    }


def split_kb_pairs(rng: random.Random, facts: list[dict]) -> dict[str, list[tuple[int, str]]]:
    """Reserve (document, fact) pairs for test and validation, so no test question asks for a
    fact that a training question asks for."""
    reserved = {"test": [], "validation": [], "train": []}
    for lang in LANGS:
        pairs = [(i, key) for i, fact in enumerate(facts) if fact["lang"] == lang for key in kb_fact_keys(fact)]
        rng.shuffle(pairs)
        n_test, n_validation = SFT_ROWS_PER_TASK["test"] // 2, SFT_ROWS_PER_TASK["validation"] // 2
        reserved["test"] += pairs[:n_test]
        reserved["validation"] += pairs[n_test:n_test + n_validation]
        reserved["train"] += pairs[n_test + n_validation:]
    return reserved
