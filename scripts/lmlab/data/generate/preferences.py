"""Preference pairs: an SFT item's answer as `chosen` and, as `rejected`, the same answer
spoiled in one of the failure modes (wrong format, factual error, over-long, unsupported
claim, needless refusal)."""

from __future__ import annotations

import datetime
import json
import random
import re

from lmlab.data.generate.common import compact_json, unique_item
from lmlab.data.generate.sentiment import SENTIMENT_LABELS
from lmlab.data.generate.sft import sft_makers
from lmlab.data.tasks import FAILURE_MODES, LANGS

PREFERENCE_TASKS = ("json_extraction", "arithmetic", "sentiment", "summarization", "kb_qa")
PREFERENCE_ROWS = {"test": 200, "train": 600}


NEEDLESS_REFUSALS = {
    "en": ["I'm sorry, but I can't help with that request.", "Sorry, I'm not able to answer this.",
           "I'm afraid I can't assist with that."],
    "es": ["Lo siento, pero no puedo ayudarte con esa petición.", "Lo siento, no puedo responder a esto.",
           "Me temo que no puedo ayudar con eso."],
}
PADDING = {
    "en": ["To arrive at this answer, I carefully read the whole text from beginning to end.",
           "I considered several possible interpretations before settling on this one.",
           "It is always worth double-checking details like these, because small mistakes are easy to make.",
           "I hope this detailed explanation is helpful and makes the reasoning clear.",
           "If you would like, I can also go through every step again in more detail.",
           "In summary, after reviewing all of the information provided, the answer above is the one that best fits the question.",
           "Please note that this answer is based only on the information given in the prompt."],
    "es": ["Para llegar a esta respuesta, he leído con atención todo el texto de principio a fin.",
           "He considerado varias interpretaciones posibles antes de quedarme con esta.",
           "Siempre conviene revisar dos veces este tipo de detalles, porque es fácil cometer pequeños errores.",
           "Espero que esta explicación detallada resulte útil y deje claro el razonamiento.",
           "Si quieres, puedo repasar de nuevo cada paso con más detalle.",
           "En resumen, después de revisar toda la información, la respuesta anterior es la que mejor encaja con la pregunta.",
           "Ten en cuenta que esta respuesta se basa únicamente en la información del enunciado."],
}
UNSUPPORTED_CLAIMS = {
    "en": {
        "arithmetic": ["{a}. This matches the figure in the official records as well.",
                       "{a}, which is also the most common result in problems like this one."],
        "sentiment": ["{a}. The reviewer is clearly a regular customer.",
                      "{a}. This is also the most reviewed product of its brand."],
        "summarization": ["{a} Most residents strongly support the decision.",
                          "{a} Experts call it the most important news of the year in the region."],
        "kb_qa": ["{a}; it is also the largest company in its sector.",
                  "{a}, and it was the first company in the region to export abroad."],
    },
    "es": {
        "arithmetic": ["{a}. Coincide además con la cifra de los registros oficiales.",
                       "{a}, que también es el resultado más habitual en problemas como este."],
        "sentiment": ["{a}. Se nota que quien escribe es un cliente habitual.",
                      "{a}. Además es el producto con más opiniones de su marca."],
        "summarization": ["{a} La mayoría de los vecinos apoya la decisión con entusiasmo.",
                          "{a} Los expertos lo consideran la noticia más importante del año en la región."],
        "kb_qa": ["{a}; además es la mayor empresa de su sector.",
                  "{a}, y fue la primera empresa de la región en exportar."],
    },
}
SPANISH_LABELS = {"positive": "positivo", "negative": "negativo", "neutral": "neutral"}


def _json_factual_error(rng: random.Random, item: dict, lang: str) -> str:
    fields = item["_fields"]
    obj = {key: value for key, _, value in fields}
    candidates = [i for i, (_, _, value) in enumerate(fields) if value is not None]
    index = rng.choice(candidates)
    key, fragment, value = fields[index]
    if isinstance(value, bool):
        wrong = not value
    elif isinstance(value, int):
        low, high = fragment.get("minimum", 0), fragment.get("maximum", value + 10)
        wrong = rng.choice([v for v in range(max(low, value - 10), min(high, value + 10) + 1) if v != value])
    elif "enum" in fragment:
        wrong = rng.choice([v for v in fragment["enum"] if v != value])
    elif fragment.get("format") == "date":
        wrong = (datetime.date.fromisoformat(value) + datetime.timedelta(days=rng.randint(1, 40))).isoformat()
    else:
        wrong = value
        while wrong == value:
            wrong = item["_family"](rng, lang)[1][index][2] or value
    obj[key] = wrong
    return compact_json(obj)


def rejected_answer(rng: random.Random, item: dict, mode: str, lang: str, facts: list[dict]) -> str:
    task, answer = item["task"], item["output"]
    if mode == "needless_refusal":
        return rng.choice(NEEDLESS_REFUSALS[lang])
    if mode == "over_long":
        padding = " ".join(rng.sample(PADDING[lang], rng.randint(4, 6)))
        return f"{answer}\n\n{padding}"
    if mode == "unsupported_claim":
        if task == "json_extraction":
            extra = {"verified": True} if lang == "en" else {"verificado": True}
            return compact_json({**json.loads(answer), **extra})
        return rng.choice(UNSUPPORTED_CLAIMS[lang][task]).format(a=answer)
    if mode == "wrong_format":
        if task == "json_extraction":
            obj = json.loads(answer)
            return "; ".join(f"{key} = {value}" for key, value in obj.items())
        if task == "arithmetic":
            return (f"The answer is {answer}." if lang == "en" else f"La respuesta es {answer}.")
        if task == "sentiment":
            return f"Sentiment: {answer.upper()}!" if lang == "en" else SPANISH_LABELS[answer].capitalize() + "."
        if task == "summarization":
            sentences = re.split(r"(?<=[.!?])\s+", item["input"])
            return "\n".join(f"- {sentence}" for sentence in sentences[:3])
        return compact_json({"answer": answer} if lang == "en" else {"respuesta": answer})
    # factual_error
    if task == "json_extraction":
        return _json_factual_error(rng, item, lang)
    if task == "arithmetic":
        value = int(answer)
        return str(rng.choice([v for v in range(max(0, value - 10), value + 11) if v != value]))
    if task == "sentiment":
        return rng.choice([label for label in SENTIMENT_LABELS if label != answer])
    if task == "summarization":
        numbers = re.findall(r"\d+", answer)
        target = rng.choice(numbers)
        replacement = str(int(target) + rng.randint(1, 9) * (10 ** max(0, len(target) - 2)))
        return re.sub(rf"(?<!\d){target}(?!\d)", replacement, answer, count=1)
    wrong = item.get("_wrong")
    if not wrong:
        key = item["_fact_key"]
        wrong = rng.choice([f[key] for f in facts if f["lang"] == lang and f[key] and f[key] != answer])
    return wrong


def make_preferences(rng: random.Random, n_rows: int, split: str, seen: set[str], facts: list[dict],
                     kb_pairs: list[tuple[int, str]]) -> list[dict]:
    """Task x failure mode x language balanced: every block of 25 rows covers each task with
    each failure mode once, and blocks alternate languages."""
    makers = sft_makers(facts, kb_pairs)
    rows = []
    for i in range(n_rows):
        mode = FAILURE_MODES[i % len(FAILURE_MODES)]
        task = PREFERENCE_TASKS[(i // len(FAILURE_MODES)) % len(PREFERENCE_TASKS)]
        lang = LANGS[(i // (len(FAILURE_MODES) * len(PREFERENCE_TASKS))) % len(LANGS)]
        item = unique_item(makers[task], rng, lang, seen)
        rows.append({
            "task": task,
            "lang": lang,
            "prompt": f"{item['instruction']}\n\n{item['input']}",
            "chosen": item["output"],
            "rejected": rejected_answer(rng, item, mode, lang, facts),
            "failure_mode": mode,
        })
    rng.shuffle(rows)
    return [{"id": f"pref-{split}-{i + 1:04d}", **row} for i, row in enumerate(rows)]
