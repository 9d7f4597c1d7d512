"""Agent tasks: calculation, knowledge-base lookup, extraction and multi-step questions,
each with its gold answer and the tool calls that reach it, plus exact repeats for
episodic memory."""

from __future__ import annotations

import random

from lmlab.core.expression import evaluate_expression
from lmlab.data.generate.arithmetic import arithmetic_problem
from lmlab.data.generate.common import compact_json, stage_rng
from lmlab.data.generate.json_extraction import JSON_FAMILIES
from lmlab.data.generate.kb import KB_QUERY_WORDS, KB_QUESTIONS
from lmlab.data.tasks import AGENT_CATEGORIES, LANGS

AGENT_ORIGINALS = {"calculation": 27, "kb_lookup": 27, "extraction": 26, "multi_step": 25}
AGENT_REPEATS = 15


AGENT_MULTI_STEP = {
    "en": {"years": "How many years passed between the founding of {a} and the founding of {b}?",
           "total": "How many people do {a} and {b} employ in total?",
           "more": "How many more employees does {a} have than {b}?"},
    "es": {"years": "¿Cuántos años pasaron entre la fundación de {a} y la de {b}?",
           "total": "¿Cuántas personas emplean {a} y {b} en total?",
           "more": "¿Cuántos empleados más tiene {a} que {b}?"},
}


def _call(tool: str, **arguments) -> dict:
    return {"tool": tool, "arguments": arguments}


def _search(fact: dict, key: str) -> dict:
    return _call("search_kb", query=f"{fact['name']} {KB_QUERY_WORDS[fact['lang']][key]}", k=3)


def _agent_task(rng: random.Random, category: str, lang: str, facts: list[dict]) -> dict:
    same_lang = [f for f in facts if f["lang"] == lang]
    if category == "calculation":
        text, expression, answer = arithmetic_problem(rng, lang)
        return {"question": text, "answer": answer, "gold_calls": [_call("calculator", expression=expression)]}
    if category == "kb_lookup":
        fact = rng.choice(same_lang)
        key = rng.choice([k for k in ("year", "city", "founder", "employees", "product")])
        question = rng.choice(KB_QUESTIONS[lang][key]).format(name=fact["name"])
        return {"question": question, "answer": fact[key], "gold_calls": [_search(fact, key)]}
    if category == "extraction":
        text, fields = rng.choice(JSON_FAMILIES)(rng, lang)
        keep = sorted(rng.sample(range(len(fields)), rng.randint(2, min(3, len(fields)))))
        keys = [fields[i][0] for i in keep]
        answer = compact_json({fields[i][0]: fields[i][2] for i in keep})
        if lang == "en":
            question = f"Extract the fields {', '.join(keys)} from this text and answer with JSON: {text}"
        else:
            question = f"Extrae los campos {', '.join(keys)} de este texto y responde en JSON: {text}"
        return {"question": question, "answer": answer,
                "gold_calls": [_call("extract_fields", text=text, fields=keys)]}
    first, second = rng.sample(same_lang, 2)
    kind = rng.choice(["years", "years", "total", "more"])
    if kind == "years":
        later, earlier = sorted([first, second], key=lambda f: int(f["year"]), reverse=True)
        expression = f"{later['year']} - {earlier['year']}"
        calls = [_search(first, "year"), _search(second, "year")]
    elif kind == "total":
        expression = f"{first['employees']} + {second['employees']}"
        calls = [_search(first, "employees"), _search(second, "employees")]
    else:
        first, second = sorted([first, second], key=lambda f: int(f["employees"]), reverse=True)
        expression = f"{first['employees']} - {second['employees']}"
        calls = [_search(first, "employees"), _search(second, "employees")]
    question = AGENT_MULTI_STEP[lang][kind].format(a=first["name"], b=second["name"])
    answer = str(evaluate_expression(expression))
    return {"question": question, "answer": answer, "gold_calls": calls + [_call("calculator", expression=expression)]}


def make_agent_tasks(seed: int, facts: list[dict]) -> list[dict]:
    """Originals in shuffled order, then AGENT_REPEATS exact repeats of earlier questions, all
    after the last original, so an agent with episodic memory has seen every original first."""
    rng = stage_rng(seed, "agents")
    originals, questions = [], set()
    for category in AGENT_CATEGORIES:
        for i in range(AGENT_ORIGINALS[category]):
            lang = LANGS[i % 2]
            while True:
                task = _agent_task(rng, category, lang, facts)
                if task["question"] not in questions:
                    questions.add(task["question"])
                    break
            originals.append({"lang": lang, "category": category, **task})
    rng.shuffle(originals)
    rows = [{"id": f"agent-{i + 1:04d}", **task, "repeat_of": None} for i, task in enumerate(originals)]
    repeated = rng.sample(range(len(rows)), AGENT_REPEATS)
    for n, index in enumerate(repeated):
        source = rows[index]
        rows.append({**source, "id": f"agent-{len(originals) + n + 1:04d}", "repeat_of": source["id"]})
    return rows
