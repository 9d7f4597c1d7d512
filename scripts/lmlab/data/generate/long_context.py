"""The long_context_qa task family: a 3000-7000 character chronicle with one answer sentence
placed at a chosen relative depth."""

from __future__ import annotations

import random

from lmlab.data.generate.names import (
    EN_DISHES,
    EN_SEASONS,
    EN_WEEKDAYS,
    ES_DISHES,
    ES_SEASONS,
    ES_WEEKDAYS,
    FESTIVALS,
    HILLS,
    VALLEYS,
    company_name,
    invented_root,
    person_name,
    restaurant_name,
    river_name,
    town_name,
)

LONG_CONTEXT_DEPTHS = (0.05, 0.25, 0.5, 0.75, 0.95)
LONG_CONTEXT_CHARS = (3000, 7000)


# A regional chronicle of invented places and people; one "needle" sentence answers the
# question, and a few look-alike sentences about other entities of the same cast make
# matching on the question's keywords alone insufficient.

CROPS = {"en": ["apples", "olives", "chestnuts", "potatoes", "cherries", "walnuts", "almonds"],
         "es": ["manzanas", "aceitunas", "castañas", "patatas", "cerezas", "nueces", "almendras"]}
BUILDINGS = {"en": ["flour mill", "railway station", "customs house", "wool warehouse", "tannery"],
             "es": ["El antiguo molino harinero", "La antigua estación de tren", "La antigua casa de aduanas",
                    "El antiguo almacén de lana", "La antigua curtiduría"]}
FILLER_TEMPLATES = {
    "en": [
        "{town} lies {km} kilometres from {town2}, on the old road to the coast.",
        "In {year}, {person} opened a small bakery on the main square of {town}.",
        "{company} moved its warehouse to the outskirts of {town} in {year}.",
        "The {river} river floods the lower fields of {town} almost every {season}.",
        "Local historians credit {person} with drawing the first reliable map of the {valley} valley.",
        "Most families in {town} grow {crop} and keep a few goats.",
        "The market in {town} opens at {hour} o'clock every {weekday}.",
        "A stone bridge built in {year} still links {town} with {town2}.",
        "{company} employs around {n} people, most of them from nearby villages.",
        "The annual {festival} festival in {town} attracts visitors from all over the region.",
        "{person} taught mathematics at the {town} secondary school for {m} years.",
        "Winters in the {valley} valley are mild, but the wind from the {hills} hills can be fierce.",
        "The town council of {town} meets on the first {weekday} of each month.",
        "{person} and {person2} founded the {town} chess club in {year}.",
        "In summer, buses to {town2} leave {town} every {m} minutes.",
        "The old {building} of {town} was turned into a museum in {year}.",
        "Visitors often stop at {restaurant} to try the local {dish}.",
        "According to the {year} census, {town} had {n} inhabitants.",
        "{company} sponsors the {town} cycling race every {season}.",
        "The {valley} valley is known for its {crop} and its narrow mountain roads.",
        "{person} still remembers the winter of {year}, when the {river} river froze for {m} days.",
        "A footpath along the {river} connects {town} and {town2} in about {m} minutes on foot.",
        "Every {season}, {person} organises a book swap in the {town} library.",
        "The {town} brass band was founded by {person} and now has {m} members.",
    ],
    "es": [
        "{town} está a {km} kilómetros de {town2}, en el viejo camino hacia la costa.",
        "En {year}, {person} abrió una pequeña panadería en la plaza mayor de {town}.",
        "{company} trasladó su almacén a las afueras de {town} en {year}.",
        "El río {river} inunda los campos bajos de {town} casi todos los años en {season}.",
        "Los historiadores locales atribuyen a {person} el primer mapa fiable del valle de {valley}.",
        "La mayoría de las familias de {town} cultivan {crop} y tienen algunas cabras.",
        "El mercado de {town} abre a las {hour} de la mañana cada {weekday}.",
        "Un puente de piedra construido en {year} sigue uniendo {town} con {town2}.",
        "{company} da trabajo a unas {n} personas, casi todas de los pueblos cercanos.",
        "La fiesta anual {festival} de {town} atrae a visitantes de toda la región.",
        "{person} dio clases de matemáticas en el instituto de {town} durante {m} años.",
        "Los inviernos en el valle de {valley} son suaves, pero el viento de los montes {hills} puede ser muy fuerte.",
        "El ayuntamiento de {town} se reúne el primer {weekday} de cada mes.",
        "{person} y {person2} fundaron el club de ajedrez de {town} en {year}.",
        "En verano, los autobuses a {town2} salen de {town} cada {m} minutos.",
        "{building} de {town} se convirtió en museo en {year}.",
        "Los visitantes suelen parar en {restaurant} para probar el {dish} de la zona.",
        "Según el censo de {year}, {town} tenía {n} habitantes.",
        "{company} patrocina cada {season} la carrera ciclista de {town}.",
        "El valle de {valley} es conocido por sus {crop} y sus estrechas carreteras de montaña.",
        "{person} aún recuerda el invierno de {year}, cuando el río {river} estuvo helado {m} días.",
        "Un sendero junto al río {river} une {town} y {town2} en unos {m} minutos a pie.",
        "Cada {season}, {person} organiza un intercambio de libros en la biblioteca de {town}.",
        "La banda de música de {town} la fundó {person} y hoy tiene {m} miembros.",
    ],
}
PRIZE_FIELDS = {"en": ["Local History", "Poetry", "Architecture", "Agriculture", "Journalism", "Photography"],
                "es": ["Historia Local", "Poesía", "Arquitectura", "Agricultura", "Periodismo", "Fotografía"]}
SECRET_DISHES = {"en": ["lentil stew", "apple pie", "gazpacho", "rice pudding", "custard", "fish soup"],
                 "es": ["guiso de lentejas", "pastel de manzana", "gazpacho", "arroz con leche", "flan", "caldo de pescado"]}
SECRET_INGREDIENTS = {"en": ["cinnamon", "toasted fennel seeds", "lemon zest", "smoked paprika", "rosemary honey",
                             "star anise", "grated nutmeg", "orange blossom water"],
                      "es": ["canela", "semillas de hinojo tostadas", "ralladura de limón", "pimentón ahumado", "miel de romero",
                             "anís estrellado", "nuez moscada rallada", "agua de azahar"]}
BOAT_WORDS = {"en": ["Lady", "Morning", "Silver", "Northern", "Patient"], "es": ["Estrella de", "Reina de", "Brisa de", "Aurora de"]}

NEEDLES = {
    "en": {
        "prototype": ("The first prototype built by {company} was nicknamed {answer}.",
                      "What was the nickname of the first prototype built by {company}?"),
        "code": ("The storeroom of the {town} library opens with the code {answer}.",
                 "Which code opens the storeroom of the {town} library?"),
        "ferry": ("The ferry that crosses the {river} river at {town} is called the {answer}.",
                  "What is the name of the ferry that crosses the {river} river at {town}?"),
        "prize": ("The {year} {prize} Prize for {field} went to {answer}.",
                  "Who received the {year} {prize} Prize for {field}?"),
        "ingredient": ("The secret ingredient of {person}'s famous {dish} is {answer}.",
                       "What is the secret ingredient of {person}'s famous {dish}?"),
    },
    "es": {
        "prototype": ("El primer prototipo de {company} recibió el apodo de {answer}.",
                      "¿Qué apodo recibió el primer prototipo de {company}?"),
        "code": ("El almacén de la biblioteca de {town} se abre con el código {answer}.",
                 "¿Qué código abre el almacén de la biblioteca de {town}?"),
        "ferry": ("El transbordador que cruza el río {river} a la altura de {town} se llama {answer}.",
                  "¿Cómo se llama el transbordador que cruza el río {river} a la altura de {town}?"),
        "prize": ("El Premio {prize} de {field} de {year} fue para {answer}.",
                  "¿Quién recibió el Premio {prize} de {field} de {year}?"),
        "ingredient": ("El ingrediente secreto del famoso {dish} de {person} es {answer}.",
                       "¿Cuál es el ingrediente secreto del famoso {dish} de {person}?"),
    },
}
LONG_CONTEXT_INSTRUCTIONS = {
    "en": ["Read the document and answer the question with a short phrase copied from it.\nQuestion: {q}",
           "Answer the question using the document. Copy the answer exactly as written.\nQuestion: {q}",
           "{q} Answer with a short span from the document."],
    "es": ["Lee el documento y responde a la pregunta con una frase corta copiada de él.\nPregunta: {q}",
           "Responde a la pregunta usando el documento. Copia la respuesta tal como aparece.\nPregunta: {q}",
           "{q} Responde con un fragmento breve del documento."],
}


def _chronicle_cast(rng: random.Random, lang: str) -> dict:
    def distinct(draw, count):
        values: list[str] = []
        while len(values) < count:
            value = draw()
            if value not in values:
                values.append(value)
        return values
    return {
        "towns": distinct(lambda: town_name(rng, lang), 5),
        "people": distinct(lambda: person_name(rng, lang), 6),
        "companies": distinct(lambda: company_name(rng, lang), 3),
        "rivers": distinct(lambda: river_name(rng), 2),
        "valleys": distinct(lambda: rng.choice(VALLEYS), 2),
        "restaurants": distinct(lambda: restaurant_name(rng, lang), 2),
    }


def _filler_sentence(rng: random.Random, lang: str, cast: dict) -> str:
    town, town2 = rng.sample(cast["towns"], 2)
    person, person2 = rng.sample(cast["people"], 2)
    return rng.choice(FILLER_TEMPLATES[lang]).format(
        town=town, town2=town2, person=person, person2=person2, company=rng.choice(cast["companies"]),
        river=rng.choice(cast["rivers"]), valley=rng.choice(cast["valleys"]), hills=rng.choice(HILLS),
        year=rng.randint(1850, 2020), n=rng.randint(200, 9000), m=rng.randint(3, 60), km=rng.randint(4, 90),
        crop=rng.choice(CROPS[lang]), weekday=rng.choice(EN_WEEKDAYS if lang == "en" else ES_WEEKDAYS),
        season=rng.choice(EN_SEASONS if lang == "en" else ES_SEASONS),
        festival=rng.choice(FESTIVALS[lang]), hour=rng.randint(6, 10), building=rng.choice(BUILDINGS[lang]),
        restaurant=rng.choice(cast["restaurants"]), dish=rng.choice(EN_DISHES if lang == "en" else ES_DISHES))


def _needle_slots(rng: random.Random, lang: str, kind: str, cast: dict, fixed: dict | None = None) -> dict:
    """Slots of one needle sentence; `fixed` holds the prize name shared by look-alikes."""
    slots = dict(fixed or {})
    if kind == "prototype":
        slots.update(company=rng.choice(cast["companies"]), answer=f"{invented_root(rng)}-{rng.randint(2, 9)}")
    elif kind == "code":
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        slots.update(town=rng.choice(cast["towns"]), answer=f"{rng.randint(1000, 9999)}-{letters}")
    elif kind == "ferry":
        slots.update(river=rng.choice(cast["rivers"]), town=rng.choice(cast["towns"]),
                     answer=f"{rng.choice(BOAT_WORDS[lang])} {invented_root(rng)}")
    elif kind == "prize":
        slots.update(year=str(rng.randint(1950, 2023)), field=rng.choice(PRIZE_FIELDS[lang]),
                     answer=person_name(rng, lang))
    else:
        slots.update(person=rng.choice(cast["people"]), dish=rng.choice(SECRET_DISHES[lang]),
                     answer=rng.choice(SECRET_INGREDIENTS[lang]))
    return slots


def long_context_item(rng: random.Random, lang: str, depth: float) -> dict:
    """A 3000-7000 character chronicle with the answer sentence at relative position `depth`."""
    low, high = LONG_CONTEXT_CHARS
    for _ in range(200):
        cast = _chronicle_cast(rng, lang)
        kind = rng.choice(sorted(NEEDLES[lang]))
        sentence_template, question_template = NEEDLES[lang][kind]
        shared = {"prize": invented_root(rng)}
        needle_slots = _needle_slots(rng, lang, kind, cast, shared)
        needle = sentence_template.format(**needle_slots)
        question = question_template.format(**needle_slots)
        lookalikes = []
        for _ in range(rng.randint(1, 3)):
            other = _needle_slots(rng, lang, kind, cast, shared)
            other_question = question_template.format(**other)
            if other_question != question and other["answer"] != needle_slots["answer"]:
                lookalikes.append(sentence_template.format(**other))
        target = rng.randint(low + 300, high - 300)
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) + len(needle) < target:
            sentences.append(_filler_sentence(rng, lang, cast))
        for lookalike in lookalikes:
            sentences.insert(rng.randint(0, len(sentences)), lookalike)
        total = sum(len(s) + 1 for s in sentences) + len(needle)
        offsets = [0]
        for s in sentences:
            offsets.append(offsets[-1] + len(s) + 1)
        position = min(range(len(offsets)), key=lambda k: abs(offsets[k] - depth * total))
        sentences.insert(position, needle)
        paragraphs, start = [], 0
        while start < len(sentences):
            size = rng.randint(4, 7)
            paragraphs.append(" ".join(sentences[start:start + size]))
            start += size
        document = "\n\n".join(paragraphs)
        answer = needle_slots["answer"]
        if document.count(answer) != 1 or document.count(needle) != 1 or not low <= len(document) <= high:
            continue
        answer_start = document.index(needle) + needle.index(answer)
        if abs(document.index(needle) / len(document) - depth) > 0.06:
            continue
        return {"document": document, "question": question, "answer": answer, "answer_char_start": answer_start,
                "needle": needle, "kind": kind}
    raise RuntimeError("could not place a long-context answer")


def make_long_context_qa(rng: random.Random, lang: str, depth: float) -> dict:
    item = long_context_item(rng, lang, depth)
    return {
        "task": "long_context_qa",
        "instruction": rng.choice(LONG_CONTEXT_INSTRUCTIONS[lang]).format(q=item["question"]),
        "input": item["document"],
        "output": item["answer"],
        "meta": {"answer": item["answer"], "depth": depth, "answer_char_start": item["answer_char_start"],
                 "should_refuse": False},
    }
