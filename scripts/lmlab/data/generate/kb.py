"""The knowledge base: invented companies as fact records, their `kb.jsonl` text, and the
questions (and search queries) that ask about each fact."""

from __future__ import annotations

import random

from lmlab.data.generate.common import article, stage_rng
from lmlab.data.generate.names import (
    EN_ANIMALS,
    EN_COLORS,
    ES_ANIMALS,
    ES_COLORS,
    KB_HEADS,
    KB_TAILS,
    SECTORS,
    company_name,
    person_name,
    town_name,
)
from lmlab.data.tasks import LANGS

KB_DOCS = 80


KB_EXTRA_SENTENCES = {
    "en": ["It exports part of its production to neighbouring regions.",
           "The company also runs a small training programme for apprentices.",
           "Its workshop is open to visitors on the first Saturday of each month.",
           "It has won several regional design awards.",
           "Its main building is a former railway depot."],
    "es": ["Exporta parte de su producción a las regiones vecinas.",
           "También organiza un pequeño programa de formación para aprendices.",
           "Su taller abre al público el primer sábado de cada mes.",
           "Ha recibido varios premios regionales de diseño.",
           "Su edificio principal es un antiguo depósito ferroviario."],
}

KB_QUESTIONS = {
    "en": {
        "year": ["In which year was {name} founded?", "When was {name} established?", "What year was {name} founded in?"],
        "city": ["In which town was {name} founded?", "Where is {name} based?", "Which town is {name} from?"],
        "founder": ["Who founded {name}?", "Who started {name}?", "Who is the founder of {name}?"],
        "employees": ["How many people work at {name}?", "How many employees does {name} have?",
                      "How large is the workforce of {name}?"],
        "product": ["What is {name} best known for?", "What are the best-known products of {name}?",
                    "Which products is {name} known for?"],
        "logo": ["What does the logo of {name} show?", "What is pictured on the {name} logo?"],
    },
    "es": {
        "year": ["¿En qué año se fundó {name}?", "¿Cuál es el año de fundación de {name}?", "¿Cuándo se fundó {name}?"],
        "city": ["¿En qué localidad se fundó {name}?", "¿Dónde tiene su sede {name}?", "¿De qué localidad es {name}?"],
        "founder": ["¿Quién fundó {name}?", "¿Quién creó {name}?", "¿Quién está detrás de la fundación de {name}?"],
        "employees": ["¿Cuántas personas trabajan en {name}?", "¿Cuántos empleados tiene {name}?",
                      "¿De cuántas personas es la plantilla de {name}?"],
        "product": ["¿Por qué productos es conocida {name}?", "¿Cuáles son los productos más conocidos de {name}?",
                    "¿Qué productos han dado fama a {name}?"],
        "logo": ["¿Qué muestra el logotipo de {name}?", "¿Qué aparece en el logotipo de {name}?"],
    },
}
KB_FACTS = ("year", "city", "founder", "employees", "product", "logo")
# search_kb queries an agent should issue for a fact (the name is prepended).
KB_QUERY_WORDS = {
    "en": {"year": "founding year", "city": "town", "founder": "founder", "employees": "number of employees",
           "product": "best-known products", "logo": "logo"},
    "es": {"year": "año de fundación", "city": "localidad", "founder": "fundador", "employees": "número de empleados",
           "product": "productos más conocidos", "logo": "logotipo"},
}


def _kb_text(rng: random.Random, fact: dict) -> str:
    name, city, year, founder = fact["name"], fact["city"], fact["year"], fact["founder"]
    kind, employees, product, logo = fact["kind"], fact["employees"], fact["product"], fact["logo"]
    if fact["lang"] == "en":
        if rng.random() < 0.35:
            sentences = [f"{founder} founded {name}, {article(kind)} {kind}, in {city} in {year}."]
        else:
            sentences = [
                rng.choice([f"{name} is {article(kind)} {kind} founded in {year} in {city}.",
                            f"Founded in {year}, {name} is {article(kind)} {kind} based in {city}.",
                            f"{name}, {article(kind)} {kind} from {city}, was established in {year}."]),
                rng.choice([f"Its founder was {founder}.", f"It was started by {founder}.",
                            f"The business was set up by {founder}."]),
            ]
        sentences.append(rng.choice([f"Today it employs {employees} people.", f"It currently has {employees} employees.",
                                     f"Its workforce numbers {employees} people."]))
        sentences.append(rng.choice([f"It is best known for its {product}.", f"Most of its sales come from {product}.",
                                     f"Its catalogue centres on {product}."]))
        if logo:
            sentences.append(rng.choice([f"Its logo shows {logo}.", f"The {name} logo is {logo}."]))
    else:
        if rng.random() < 0.35:
            sentences = [f"{founder} fundó {name}, una {kind}, en {city} en {year}."]
        else:
            sentences = [
                rng.choice([f"{name} es una {kind} fundada en {year} en {city}.",
                            f"Fundada en {year}, {name} es una {kind} con sede en {city}.",
                            f"{name}, una {kind} de {city}, se fundó en {year}."]),
                rng.choice([f"Fue fundada por {founder}.", f"Su fundación se debe a {founder}.",
                            f"La puso en marcha {founder}."]),
            ]
        sentences.append(rng.choice([f"Hoy da trabajo a {employees} personas.", f"Actualmente cuenta con {employees} empleados.",
                                     f"Su plantilla es de {employees} personas."]))
        sentences.append(rng.choice([f"Es conocida sobre todo por sus {product}.",
                                     f"La mayor parte de sus ventas procede de sus {product}.",
                                     f"Su catálogo se centra en {product}."]))
        if logo:
            sentences.append(rng.choice([f"Su logotipo muestra {logo}.", f"El logotipo de {name} es {logo}."]))
    if rng.random() < 0.5:
        sentences.append(rng.choice(KB_EXTRA_SENTENCES[fact["lang"]]))
    return " ".join(sentences)


def make_kb(seed: int) -> list[dict]:
    """The knowledge base as fact records: the kb.jsonl row (`id, lang, title, text`) plus the
    facts it states, which the QA and agent generators ask about."""
    rng = stage_rng(seed, "kb")
    roots = rng.sample([head + tail for head in KB_HEADS for tail in KB_TAILS], KB_DOCS)
    # Distinct years and head counts, so every fact names exactly one entity.
    years = rng.sample(range(1890, 2016), KB_DOCS)
    headcounts = rng.sample(range(12, 4800), KB_DOCS)
    towns = {lang: [] for lang in LANGS}
    for lang in LANGS:
        while len(towns[lang]) < 14:
            town = town_name(rng, lang)
            if town not in towns[lang]:
                towns[lang].append(town)
    founders: list[str] = []
    facts = []
    for index in range(KB_DOCS):
        lang = LANGS[index % 2]
        sector = rng.choice(SECTORS)
        founder = person_name(rng, lang)
        while founder in founders:
            founder = person_name(rng, lang)
        founders.append(founder)
        logo = None
        if rng.random() < 0.5:
            color_index = rng.randrange(len(EN_COLORS))
            animal_index = rng.randrange(len(EN_ANIMALS))
            if lang == "en":
                phrase = f"{EN_COLORS[color_index]} {EN_ANIMALS[animal_index]}"
                logo = f"{article(phrase)} {phrase}"
            else:
                logo = f"{ES_ANIMALS[animal_index]} {ES_COLORS[color_index]}"
        fact = {
            "id": f"kb-{index + 1:04d}",
            "lang": lang,
            "name": company_name(rng, lang, sector=sector, root=roots[index]),
            "kind": sector[3] if lang == "en" else sector[4],
            "year": str(years[index]),
            "city": rng.choice(towns[lang]),
            "founder": founder,
            "employees": str(headcounts[index]),
            "product": rng.choice(sector[5] if lang == "en" else sector[6]),
            "logo": logo,
        }
        fact["text"] = _kb_text(rng, fact)
        facts.append(fact)
    return facts


def kb_rows(facts: list[dict]) -> list[dict]:
    return [{"id": f["id"], "lang": f["lang"], "title": f["name"], "text": f["text"]} for f in facts]


def kb_fact_keys(fact: dict) -> list[str]:
    return [key for key in KB_FACTS if fact[key]]
