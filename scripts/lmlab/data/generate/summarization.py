"""The summarization task family: a 3-6 sentence news paragraph and a one-sentence reference
summary under 25 words."""

from __future__ import annotations

import random

from lmlab.data.generate.common import ordinal_en, word_count
from lmlab.data.generate.names import (
    EN_MONTHS,
    EN_WEEKDAYS,
    ES_MONTHS,
    ES_WEEKDAYS,
    FESTIVALS,
    SECTORS,
    VALLEYS,
    brand_product,
    company_name,
    invented_root,
    person_name,
    river_name,
    town_name,
)

SUMMARY_MAX_WORDS = 24  # "under 25 words"


# An event is a lead sentence, an optional key sentence (always kept), optional details
# (some kept, in order) and a one-sentence reference that uses only the lead and key.

LAUNCH_CATEGORIES = {"en": ["kitchen gadget", "fitness tracker", "e-bike", "home weather station", "portable projector"],
                     "es": ["aparato de cocina", "pulsera de actividad", "bicicleta eléctrica", "estación meteorológica doméstica",
                            "proyector portátil"]}
FINDINGS = {
    "en": [("bees in the {valley} valley visit blue flowers more often than yellow ones", "hives"),
           ("walking to school improves morning concentration in children", "pupils"),
           ("short afternoon naps reduce evening snacking", "adults"),
           ("planting hedges halves wind damage to orchards", "orchards"),
           ("night trains fill up faster when tickets are sold online", "train routes"),
           ("shared kitchen gardens reduce food waste in apartment blocks", "households")],
    "es": [("las abejas del valle de {valley} visitan más las flores azules que las amarillas", "colmenas"),
           ("ir andando al colegio mejora la concentración de los niños por la mañana", "alumnos"),
           ("las siestas cortas reducen el picoteo por la tarde", "adultos"),
           ("plantar setos reduce a la mitad los daños del viento en los huertos", "huertos"),
           ("los trenes nocturnos se llenan antes cuando los billetes se venden en línea", "rutas de tren"),
           ("los huertos compartidos reducen el desperdicio de comida en los bloques de pisos", "hogares")],
}


def _summary_slots(rng: random.Random, lang: str) -> dict:
    months = EN_MONTHS if lang == "en" else ES_MONTHS
    weekdays = EN_WEEKDAYS if lang == "en" else ES_WEEKDAYS
    goals_a = rng.randint(1, 5)
    town, other_town = town_name(rng, lang), town_name(rng, lang)
    while other_town == town:
        other_town = town_name(rng, lang)
    day1 = rng.randint(1, 24)
    finding, subjects = rng.choice(FINDINGS[lang])
    product = brand_product(rng, lang)
    return {
        "town": town, "other_town": other_town, "river": river_name(rng), "valley": rng.choice(VALLEYS),
        "weekday": rng.choice(weekdays), "month": rng.choice(months), "person": person_name(rng, lang),
        "person2": person_name(rng, lang), "company": company_name(rng, lang), "institute": invented_root(rng),
        "cost": f"{rng.randint(1, 9)}.{rng.randint(1, 9)}" if lang == "en" else f"{rng.randint(1, 9)},{rng.randint(1, 9)}",
        "months": rng.randint(4, 20), "minutes": rng.randint(5, 25), "yes": rng.randint(9, 15), "no": rng.randint(2, 8),
        "product": product["name"].split(" ")[0] + " " + product["name"].split(" ")[1] if lang == "en"
        else " ".join(product["name"].split(" ")[-2:]),
        "category": rng.choice(LAUNCH_CATEGORIES[lang]), "price": rng.randrange(29, 900, 10),
        "years": rng.randint(2, 40), "units": rng.randrange(5000, 90000, 1000),
        "nth": ordinal_en(rng.randint(2, 40)) if lang == "en" else str(rng.randint(2, 40)),
        "festival": rng.choice(FESTIVALS[lang]), "day1": day1, "day2": day1 + rng.randint(1, 4),
        "visitors": rng.randrange(2000, 60000, 500), "books": rng.randrange(8000, 90000, 1000),
        "seats": rng.randrange(40, 400, 10), "streets": rng.randint(3, 40), "homes": rng.randrange(100, 5000, 10),
        "goals_a": goals_a, "goals_b": rng.randint(0, goals_a - 1),
        "club": (f"{town} Rovers" if lang == "en" else f"Club Deportivo {town}"),
        "other_club": (f"Athletic {other_town}" if lang == "en" else f"Unión {other_town}"),
        "finding": finding.replace("{valley}", rng.choice(VALLEYS)), "subjects": subjects,
        "sample": rng.randint(40, 900), "workers": rng.randint(25, 600), "trees": rng.randrange(50, 3000, 10),
        # Only sectors whose products come out of a factory.
        "plant_product": rng.choice([s for s in SECTORS if s[0] not in ("software", "logistics", "publishing")])
        [5 if lang == "en" else 6][rng.randrange(4)],
    }


SUMMARY_EVENTS = {
    "en": [
        {"lead": "On {weekday}, the town council of {town} approved a plan to build a footbridge over the {river} river at a cost of {cost} million euros.",
         "key": "Construction is due to start in {month} and should take about {months} months.",
         "details": ["Mayor {person} said the bridge would shorten the walk from the old quarter to the station by {minutes} minutes.",
                     "The vote passed with {yes} votes in favour and {no} against.",
                     "Several shop owners on the riverbank worry about noise and lost customers during the works.",
                     "Part of the money comes from a regional grant for sustainable transport."],
         "summary": "{town} approved a {cost} million euro footbridge over the {river} river, with works starting in {month}."},
        {"lead": "{company} has launched the {product}, a new {category} priced at {price} euros.",
         "key": "It will be sold online from {month}.",
         "details": ["Chief executive {person} said the team spent {years} years developing it.",
                     "Early testers praised its battery life but criticised its weight.",
                     "The company expects to sell {units} units in the first year.",
                     "Competitors are expected to answer with cheaper models."],
         "summary": "{company} launched the {product}, a {price}-euro {category} sold online from {month}."},
        {"lead": "The {nth} {festival} Festival will be held in {town} from {day1} to {day2} {month}.",
         "key": "Organisers expect around {visitors} visitors.",
         "details": ["This year's programme includes a night parade along the {river} river.",
                     "Hotels in the town centre are already almost fully booked.",
                     "Volunteer coordinator {person} said {sample} residents have offered to help.",
                     "Entry to most events will be free."],
         "summary": "{town} will host the {nth} {festival} Festival from {day1} to {day2} {month}, expecting about {visitors} visitors."},
        {"lead": "A new public library opened in {town} on {weekday}, with {books} books and {seats} reading seats.",
         "key": None,
         "details": ["The building used to be a wool warehouse and was restored over {months} months.",
                     "Librarian {person} said the children's section was the busiest on the first day.",
                     "Opening hours will be extended during the exam season.",
                     "The project was paid for by the regional government.",
                     "A small café on the ground floor is run by a local cooperative."],
         "summary": "{town} opened a new public library with {books} books and {seats} reading seats."},
        {"lead": "Heavy rain on {weekday} night flooded {streets} streets in {town} and cut power to {homes} homes.",
         "key": "Power was restored by the next afternoon.",
         "details": ["The {river} river rose more than two metres in a few hours.",
                     "No one was injured, according to the fire service.",
                     "Several cars parked near the market were carried downstream.",
                     "The council has opened a sports hall for families who cannot return home."],
         "summary": "Heavy rain flooded {streets} streets in {town}, leaving {homes} homes without power until the next afternoon."},
        {"lead": "{club} won the regional cup final on {weekday}, beating {other_club} {goals_a}-{goals_b} in {town}.",
         "key": "It is the club's first title in {years} years.",
         "details": ["The winning goal came in the last ten minutes.",
                     "Coach {person} dedicated the victory to the youth team.",
                     "About {sample} supporters travelled to the match.",
                     "The squad will be received at the town hall on {month} {day1}."],
         "summary": "{club} beat {other_club} {goals_a}-{goals_b} to win the regional cup, the club's first title in {years} years."},
        {"lead": "Researchers at the {institute} Institute report that {finding}.",
         "key": "The study followed {sample} {subjects} for {months} months.",
         "details": ["The team was led by {person}.",
                     "The authors say the effect was larger than they expected.",
                     "They plan to repeat the study in the {valley} valley next year.",
                     "Other experts warned that the sample was small."],
         "summary": "A {institute} Institute study of {sample} {subjects} found that {finding}."},
        {"lead": "{company} will open a new plant in {town} in {month} and hire {workers} people.",
         "key": "The plant will make {plant_product}.",
         "details": ["Most of the jobs will be filled by people from the area.",
                     "Mayor {person} called the news the best in a decade.",
                     "The company chose {town} for its rail connection.",
                     "Training courses for new staff begin next {weekday}."],
         "summary": "{company} will open a plant in {town} in {month}, hiring {workers} people to make {plant_product}."},
        {"lead": "Volunteers in {town} planted {trees} trees along the banks of the {river} river last {weekday}.",
         "key": "The native species were chosen to stop the banks from eroding.",
         "details": ["The event was organised by the local scouts.",
                     "Organiser {person} said more than {sample} people took part.",
                     "The council provided tools and water.",
                     "A second planting day is planned for {month}."],
         "summary": "Volunteers planted {trees} native trees along the {river} river in {town} to stop bank erosion."},
    ],
    "es": [
        {"lead": "El {weekday}, el ayuntamiento de {town} aprobó construir una pasarela sobre el río {river} por {cost} millones de euros.",
         "key": "Las obras empezarán en {month} y durarán unos {months} meses.",
         "details": ["La alcaldesa, {person}, dijo que la pasarela acortará {minutes} minutos el paseo del casco antiguo a la estación.",
                     "La propuesta salió adelante con {yes} votos a favor y {no} en contra.",
                     "Varios comerciantes de la ribera temen el ruido y la pérdida de clientes durante las obras.",
                     "Parte del dinero procede de una ayuda regional para el transporte sostenible."],
         "summary": "{town} aprobó una pasarela de {cost} millones de euros sobre el río {river}, con obras desde {month}."},
        {"lead": "{company} ha lanzado {product}, un nuevo modelo de {category} que cuesta {price} euros.",
         "key": "Se venderá por internet a partir de {month}.",
         "details": ["Su director general, {person}, explicó que el equipo ha tardado {years} años en desarrollarlo.",
                     "Los primeros usuarios elogiaron la batería pero criticaron el peso.",
                     "La empresa espera vender {units} unidades el primer año.",
                     "Se espera que la competencia responda con modelos más baratos."],
         "summary": "{company} lanzó {product}, un modelo de {category} de {price} euros que se venderá por internet desde {month}."},
        {"lead": "La {nth}.ª edición del Festival {festival} se celebrará en {town} del {day1} al {day2} de {month}.",
         "key": "La organización espera unos {visitors} visitantes.",
         "details": ["El programa de este año incluye un desfile nocturno junto al río {river}.",
                     "Los hoteles del centro están ya casi llenos.",
                     "La coordinadora de voluntarios, {person}, dijo que {sample} vecinos se han ofrecido a ayudar.",
                     "La entrada a la mayoría de actividades será gratuita."],
         "summary": "{town} acogerá del {day1} al {day2} de {month} la {nth}.ª edición del Festival {festival}, con unos {visitors} visitantes previstos."},
        {"lead": "El {weekday} abrió en {town} una nueva biblioteca pública con {books} libros y {seats} puestos de lectura.",
         "key": None,
         "details": ["El edificio era un antiguo almacén de lana y se restauró durante {months} meses.",
                     "La bibliotecaria, {person}, contó que la sección infantil fue la más concurrida el primer día.",
                     "El horario se ampliará en época de exámenes.",
                     "El proyecto lo ha pagado el gobierno regional.",
                     "En la planta baja hay un pequeño café que gestiona una cooperativa local."],
         "summary": "{town} abrió una nueva biblioteca pública con {books} libros y {seats} puestos de lectura."},
        {"lead": "Las fuertes lluvias de la noche del {weekday} inundaron {streets} calles de {town} y dejaron sin luz a {homes} viviendas.",
         "key": "La luz volvió al día siguiente por la tarde.",
         "details": ["El río {river} subió más de dos metros en pocas horas.",
                     "No hubo heridos, según los bomberos.",
                     "Varios coches aparcados junto al mercado fueron arrastrados por el agua.",
                     "El ayuntamiento ha abierto un polideportivo para las familias que no pueden volver a casa."],
         "summary": "La lluvia inundó {streets} calles de {town} y dejó sin luz a {homes} viviendas hasta la tarde siguiente."},
        {"lead": "El {club} ganó el {weekday} la final de la copa regional al vencer {goals_a}-{goals_b} al {other_club} en {town}.",
         "key": "Es el primer título del club en {years} años.",
         "details": ["El gol de la victoria llegó en los últimos diez minutos.",
                     "El entrenador, {person}, dedicó el triunfo a la cantera.",
                     "Unos {sample} aficionados viajaron para ver el partido.",
                     "El ayuntamiento recibirá a la plantilla el {day1} de {month}."],
         "summary": "El {club} venció {goals_a}-{goals_b} al {other_club} y ganó la copa regional, su primer título en {years} años."},
        {"lead": "Investigadores del Instituto {institute} concluyen que {finding}.",
         "key": "El estudio siguió a {sample} {subjects} durante {months} meses.",
         "details": ["El equipo estuvo dirigido por {person}.",
                     "Los autores dicen que el efecto fue mayor de lo esperado.",
                     "Planean repetir el estudio en el valle de {valley} el año que viene.",
                     "Otros expertos advierten de que la muestra era pequeña."],
         "summary": "Un estudio del Instituto {institute} con {sample} {subjects} concluye que {finding}."},
        {"lead": "{company} abrirá en {month} una nueva planta en {town} y contratará a {workers} personas.",
         "key": "La planta fabricará {plant_product}.",
         "details": ["La mayoría de los puestos se cubrirán con gente de la comarca.",
                     "El alcalde, {person}, calificó la noticia como la mejor en una década.",
                     "La empresa eligió {town} por su conexión ferroviaria.",
                     "Los cursos de formación para la nueva plantilla empiezan el próximo {weekday}."],
         "summary": "{company} abrirá en {month} una planta en {town} y contratará a {workers} personas para fabricar {plant_product}."},
        {"lead": "Voluntarios de {town} plantaron {trees} árboles en las orillas del río {river} el pasado {weekday}.",
         "key": "Se eligieron especies autóctonas para frenar la erosión de las orillas.",
         "details": ["La actividad la organizaron los scouts del pueblo.",
                     "La organizadora, {person}, dijo que participaron más de {sample} personas.",
                     "El ayuntamiento aportó herramientas y agua.",
                     "Hay prevista una segunda jornada de plantación en {month}."],
         "summary": "Voluntarios plantaron {trees} árboles autóctonos junto al río {river} en {town} para frenar la erosión."},
    ],
}

SUMMARY_INSTRUCTIONS = {
    "en": ["Summarise the paragraph in one sentence of fewer than 25 words.",
           "Write a one-sentence summary (under 25 words) of the text.",
           "Give a single-sentence summary of this news item, in under 25 words."],
    "es": ["Resume el párrafo en una sola frase de menos de 25 palabras.",
           "Escribe un resumen de una frase (menos de 25 palabras) del texto.",
           "Resume esta noticia en una sola frase de menos de 25 palabras."],
}


def summary_item(rng: random.Random, lang: str) -> tuple[str, str, dict]:
    """(paragraph, reference summary, slots): 3-6 sentences and one sentence under 25 words."""
    for _ in range(100):
        event = rng.choice(SUMMARY_EVENTS[lang])
        slots = _summary_slots(rng, lang)
        fixed = [event["lead"]] + ([event["key"]] if event["key"] else [])
        wanted = rng.randint(max(3, len(fixed) + 1), min(6, len(fixed) + len(event["details"])))
        chosen = sorted(rng.sample(range(len(event["details"])), wanted - len(fixed)))
        sentences = fixed[:1] + ([fixed[1]] if len(fixed) > 1 and rng.random() < 0.5 else [])
        rest = [event["details"][i] for i in chosen]
        if len(fixed) > 1 and fixed[1] not in sentences:
            rest.insert(rng.randint(0, len(rest)), fixed[1])
        paragraph = " ".join(sentences + rest).format(**slots)
        summary = event["summary"].format(**slots)
        if word_count(summary) <= SUMMARY_MAX_WORDS:
            return paragraph, summary, slots
    raise RuntimeError("no summary under the word limit")


def make_summarization(rng: random.Random, lang: str) -> dict:
    paragraph, summary, slots = summary_item(rng, lang)
    return {
        "task": "summarization",
        "instruction": rng.choice(SUMMARY_INSTRUCTIONS[lang]),
        "input": paragraph,
        "output": summary,
        "meta": {"reference": summary, "should_refuse": False},
        "_slots": slots,
    }
