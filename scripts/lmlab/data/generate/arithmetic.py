"""The arithmetic task family: word problems with a gold expression and its integer answer.

The gold expression is evaluated by `lmlab.core.expression`, the evaluator behind the
agents' calculator tool, so a gold calculator call gives the gold answer."""

from __future__ import annotations

import random

from lmlab.core.expression import evaluate_expression
from lmlab.data.generate.names import EN_FIRST, ES_FIRST, invented_root, town_name


SMALL_ITEMS = {"en": ["pencils", "stickers", "batteries", "seed packets", "candles", "postcards", "marbles", "notebooks"],
               "es": ["lápices", "pegatinas", "pilas", "sobres de semillas", "velas", "postales", "canicas", "cuadernos"]}


def _first(rng, lang):
    return rng.choice(EN_FIRST if lang == "en" else ES_FIRST)


def _ar_change(rng, lang):
    name, packs, price = _first(rng, lang), rng.randint(2, 9), rng.randint(2, 15)
    note = rng.choice([n for n in (50, 100, 200) if n > packs * price])
    item = rng.choice(SMALL_ITEMS[lang])
    if lang == "en":
        text = (f"{name} buys {packs} packs of {item} at {price} dollars per pack and pays with a {note}-dollar note. "
                f"How much change, in dollars, does {name} get?")
    else:
        text = (f"{name} compra {packs} paquetes de {item} a {price} euros el paquete y paga con un billete de {note} euros. "
                f"¿Cuántos euros le devuelven?")
    return text, f"{note} - {packs} * {price}"


def _ar_share(rng, lang):
    name, friends, each = _first(rng, lang), rng.randint(2, 9), rng.randint(3, 25)
    item = rng.choice(SMALL_ITEMS[lang])
    total = friends * each
    op = rng.choice(["/", "//"])
    if lang == "en":
        text = f"{name} has {total} {item} and shares them equally among {friends} friends. How many {item} does each friend get?"
    else:
        text = f"{name} tiene {total} {item} para repartir a partes iguales entre {friends} amigos. ¿Cuántas unidades recibe cada amigo?"
    return text, f"{total} {op} {friends}"


def _ar_leftover_teams(rng, lang):
    size = rng.randint(3, 8)
    total = size * rng.randint(3, 12) + rng.randint(1, size - 1)
    if lang == "en":
        text = f"{total} students are split into teams of {size}. How many students are left without a full team?"
    else:
        text = f"{total} estudiantes se reparten en equipos de {size}. ¿Cuántos estudiantes se quedan sin equipo completo?"
    return text, f"{total} % {size}"


def _ar_shelf(rng, lang):
    rows, per_row = rng.randint(3, 12), rng.randint(4, 20)
    broken = rng.randint(1, rows * per_row // 3)
    if lang == "en":
        text = f"A shop shelf has {rows} rows with {per_row} jars in each row, and {broken} jars are broken. How many jars are intact?"
    else:
        text = f"Una estantería tiene {rows} filas con {per_row} tarros en cada fila, y {broken} tarros están rotos. ¿Cuántos tarros quedan enteros?"
    return text, f"{rows} * {per_row} - {broken}"


def _ar_speed(rng, lang):
    speed, hours = rng.choice(range(40, 130, 5)), rng.randint(2, 7)
    vehicle = rng.choice(["train", "bus", "van"]) if lang == "en" else rng.choice(["tren", "autobús", "camión"])
    town = town_name(rng, lang)
    if lang == "en":
        text = f"A {vehicle} leaves {town} and travels at {speed} km/h for {hours} hours. How many kilometres does it cover?"
    else:
        text = f"Un {vehicle} sale de {town} y circula a {speed} km/h durante {hours} horas. ¿Cuántos kilómetros recorre?"
    return text, f"{speed} * {hours}"


def _ar_ages(rng, lang):
    name, age, gap, later = _first(rng, lang), rng.randint(5, 40), rng.randint(2, 12), rng.randint(2, 20)
    if lang == "en":
        text = f"{name} is {age} years old, and {name}'s cousin is {gap} years older. How old will the cousin be in {later} years?"
    else:
        text = f"{name} tiene {age} años y su primo es {gap} años mayor. ¿Cuántos años tendrá el primo dentro de {later} años?"
    return text, f"{age} + {gap} + {later}"


def _ar_savings(rng, lang):
    name, weekly, weeks = _first(rng, lang), rng.randint(5, 40), rng.randint(3, 12)
    spent = rng.randint(1, weekly * weeks - 1)
    if lang == "en":
        text = f"{name} saves {weekly} dollars every week. After {weeks} weeks, {name} spends {spent} dollars on a gift. How many dollars are left?"
    else:
        text = f"{name} ahorra {weekly} euros cada semana. Tras {weeks} semanas, gasta {spent} euros en un regalo. ¿Cuántos euros le quedan?"
    return text, f"{weekly} * {weeks} - {spent}"


def _ar_pages(rng, lang):
    name, per_day, days = _first(rng, lang), rng.randint(8, 40), rng.randint(2, 9)
    pages = per_day * days + rng.randint(10, 200)
    if lang == "en":
        text = f"A novel has {pages} pages. {name} reads {per_day} pages a day. How many pages are still unread after {days} days?"
    else:
        text = f"Una novela tiene {pages} páginas. {name} lee {per_day} páginas al día. ¿Cuántas páginas le quedan por leer después de {days} días?"
    return text, f"{pages} - {per_day} * {days}"


def _ar_buses(rng, lang):
    seats = rng.choice([30, 35, 40, 45, 50, 55])
    people = seats * rng.randint(2, 9) + rng.randint(1, seats - 1)
    if lang == "en":
        text = f"{people} fans travel to a match in buses with {seats} seats each. How many buses can be completely filled?"
    else:
        text = f"{people} aficionados viajan a un partido en autobuses de {seats} plazas. ¿Cuántos autobuses se pueden llenar por completo?"
    return text, f"{people} // {seats}"


def _ar_recipe(rng, lang):
    people, per_person, guests = rng.randint(2, 6), rng.choice([25, 30, 40, 50, 60, 75]), rng.randint(7, 20)
    flour = people * per_person
    if lang == "en":
        text = f"A recipe uses {flour} grams of flour for {people} people. How many grams of flour are needed for {guests} people?"
    else:
        text = f"Una receta lleva {flour} gramos de harina para {people} personas. ¿Cuántos gramos de harina hacen falta para {guests} personas?"
    return text, f"{flour} // {people} * {guests}"


def _ar_temperature(rng, lang):
    dawn, rise = rng.randint(2, 15), rng.randint(3, 14)
    fall = rng.randint(1, dawn + rise)
    town = town_name(rng, lang)
    if lang == "en":
        text = f"At dawn it was {dawn} degrees in {town}. By noon it had risen {rise} degrees, and by night it fell {fall} degrees. What was the temperature at night?"
    else:
        text = f"Al amanecer hacía {dawn} grados en {town}. A mediodía había subido {rise} grados y por la noche bajó {fall} grados. ¿Qué temperatura hacía por la noche?"
    return text, f"{dawn} + {rise} - {fall}"


def _ar_area(rng, lang):
    length, width = rng.randint(4, 40), rng.randint(3, 25)
    if lang == "en":
        text = f"A vegetable garden is {length} metres long and {width} metres wide. What is its area in square metres?"
    else:
        text = f"Un huerto mide {length} metros de largo y {width} metros de ancho. ¿Cuál es su superficie en metros cuadrados?"
    return text, f"{length} * {width}"


def _ar_fence(rng, lang):
    length, width = rng.randint(10, 90), rng.randint(5, 60)
    if lang == "en":
        text = f"A rectangular field measures {length} m by {width} m. How many metres of fence are needed to go all the way around it?"
    else:
        text = f"Un campo rectangular mide {length} m por {width} m. ¿Cuántos metros de valla hacen falta para rodearlo entero?"
    return text, f"2 * ({length} + {width})"


def _ar_shopping(rng, lang):
    name = _first(rng, lang)
    a, pa, b, pb = rng.randint(2, 8), rng.randint(2, 9), rng.randint(2, 10), rng.randint(1, 6)
    if lang == "en":
        text = f"{name} buys {a} notebooks at {pa} dollars each and {b} pens at {pb} dollars each. How many dollars does {name} spend in total?"
    else:
        text = f"{name} compra {a} cuadernos a {pa} euros cada uno y {b} bolígrafos a {pb} euros cada uno. ¿Cuántos euros gasta en total?"
    return text, f"{a} * {pa} + {b} * {pb}"


def _ar_minutes(rng, lang):
    hours, minutes = rng.randint(1, 3), rng.randint(1, 59)
    if lang == "en":
        text = f"A film lasts {hours} hour{'s' if hours > 1 else ''} and {minutes} minutes. How long is it in minutes?"
    else:
        text = f"Una película dura {hours} hora{'s' if hours > 1 else ''} y {minutes} minutos. ¿Cuántos minutos dura en total?"
    return text, f"{hours} * 60 + {minutes}"


def _ar_eggs(rng, lang):
    eggs = rng.randint(30, 400)
    farm = invented_root(rng)
    leftover = rng.random() < 0.5
    if lang == "en":
        question = "How many eggs are left over after filling as many boxes of 12 as possible?" if leftover else \
            "How many full boxes of 12 can be packed?"
        text = f"The {farm} farm collects {eggs} eggs on Monday. {question}"
    else:
        question = "¿Cuántos huevos sobran después de llenar todas las cajas de 12 posibles?" if leftover else \
            "¿Cuántas cajas completas de 12 se pueden llenar?"
        text = f"La granja {farm} recoge {eggs} huevos el lunes. {question}"
    return text, f"{eggs} % 12" if leftover else f"{eggs} // 12"


def _ar_average(rng, lang):
    name = _first(rng, lang)
    a, b = rng.randint(4, 30), rng.randint(4, 30)
    c = rng.choice([x for x in range(4, 33) if (a + b + x) % 3 == 0])
    if lang == "en":
        text = f"{name} scored {a}, {b} and {c} points in three basketball games. What was the average score per game?"
    else:
        text = f"{name} anotó {a}, {b} y {c} puntos en tres partidos de baloncesto. ¿Cuál fue su media de puntos por partido?"
    return text, f"({a} + {b} + {c}) / 3"


ARITHMETIC_FAMILIES = [_ar_change, _ar_share, _ar_leftover_teams, _ar_shelf, _ar_speed, _ar_ages, _ar_savings,
                       _ar_pages, _ar_buses, _ar_recipe, _ar_temperature, _ar_area, _ar_fence, _ar_shopping,
                       _ar_minutes, _ar_eggs, _ar_average]

ARITHMETIC_INSTRUCTIONS = {
    "en": ["Solve the word problem. Answer with the number only.",
           "Work out the answer and reply with just the number.",
           "Answer the math question with a single integer and nothing else."],
    "es": ["Resuelve el problema. Responde solo con el número.",
           "Calcula la respuesta y contesta únicamente con el número.",
           "Responde a la pregunta de matemáticas con un único número entero y nada más."],
}


def arithmetic_problem(rng: random.Random, lang: str) -> tuple[str, str, str]:
    """(problem text, gold expression, integer answer as a string)."""
    text, expression = rng.choice(ARITHMETIC_FAMILIES)(rng, lang)
    value = evaluate_expression(expression)
    if value != int(value) or value < 0:
        raise AssertionError(f"{expression} = {value} is not a non-negative integer")
    return text, expression, str(int(value))


def make_arithmetic(rng: random.Random, lang: str) -> dict:
    text, expression, answer = arithmetic_problem(rng, lang)
    return {
        "task": "arithmetic",
        "instruction": rng.choice(ARITHMETIC_INSTRUCTIONS[lang]),
        "input": text,
        "output": answer,
        "meta": {"answer": answer, "expression": expression, "should_refuse": False},
    }
