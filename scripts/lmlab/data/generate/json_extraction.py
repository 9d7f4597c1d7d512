"""The json_extraction task family: a short text and the fields it states, with the JSON
Schema the answer must satisfy."""

from __future__ import annotations

import random

from lmlab.data.generate.common import article, ascii_slug, compact_json
from lmlab.data.generate.names import (
    EN_FIRST,
    ES_FIRST,
    brand_product,
    company_name,
    date_text,
    invented_root,
    person_name,
    random_date,
    town_name,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# A family draws a short text and the fields it states, as (key, JSON Schema fragment, value)
# in output order. Spanish items use Spanish keys and enum values, as a Spanish API would.

STRING = {"type": "string"}
DATE = {"type": "string", "format": "date"}
EMAIL = {"type": "string", "format": "email"}


def _integer(minimum=None, maximum=None) -> dict:
    fragment = {"type": "integer"}
    if minimum is not None:
        fragment["minimum"] = minimum
    if maximum is not None:
        fragment["maximum"] = maximum
    return fragment


def _email_for(person: str, company_root: str) -> str:
    first, surname = person.split(" ", 1)
    return f"{ascii_slug(first)}.{ascii_slug(surname)}@{ascii_slug(company_root)}.example"


def _jx_contact(rng, lang):
    person = person_name(rng, lang)
    root = invented_root(rng)
    company = company_name(rng, lang, root=root)
    email = _email_for(person, root)
    phone = f"555-01{rng.randint(0, 99):02d}" if rng.random() < 0.5 else None
    first = person.split(" ")[0]
    if lang == "en":
        text = rng.choice([
            f"Hi, this is {person} from {company}. You can reach me at {email}"
            + (f" or on {phone}." if phone else "."),
            f"New lead: {person} ({company}), email {email}" + (f", phone {phone}." if phone else "."),
            f"Please add {person} to the mailing list. {first} works at {company} and uses the address {email}."
            + (f" Phone: {phone}." if phone else ""),
        ])
        keys = ("name", "email", "company", "phone")
    else:
        text = rng.choice([
            f"Hola, soy {person}, de {company}. Podéis escribirme a {email}"
            + (f" o llamarme al {phone}." if phone else "."),
            f"Nuevo contacto: {person} ({company}), correo {email}" + (f", teléfono {phone}." if phone else "."),
            f"Por favor, añade a {person} a la lista de correo. Trabaja en {company} y su dirección es {email}."
            + (f" Teléfono: {phone}." if phone else ""),
        ])
        keys = ("nombre", "correo", "empresa", "telefono")
    fields = [(keys[0], STRING, person), (keys[1], EMAIL, email), (keys[2], STRING, company),
              (keys[3], {"type": ["string", "null"]}, phone)]
    return text, fields


EVENT_NAMES = {
    "en": ["Regional Beekeeping Fair", "Spring Book Market", "Open Data Workshop", "Vintage Bicycle Rally",
           "Community Choir Concert", "Pottery Weekend", "Night Market", "Seed Swap Day", "Board Game Marathon"],
    "es": ["Feria Regional de Apicultura", "Mercado de Libros de Primavera", "Taller de Datos Abiertos",
           "Concentración de Bicicletas Antiguas", "Concierto del Coro Vecinal", "Fin de Semana de Cerámica",
           "Mercado Nocturno", "Jornada de Intercambio de Semillas", "Maratón de Juegos de Mesa"],
}


def _jx_event(rng, lang):
    event = rng.choice(EVENT_NAMES[lang])
    city = town_name(rng, lang)
    day = random_date(rng)
    when = date_text(rng, day, lang)
    count = rng.randint(12, 900)
    if lang == "en":
        text = rng.choice([
            f"The {event} will take place in {city} on {when}. So far {count} people have signed up.",
            f"Save the date: {event}, {when}, {city}. Expected attendance: {count}.",
            f"{count} guests are confirmed for the {event}, held in {city} on {when}.",
        ])
        keys = ("event", "date", "city", "attendees")
    else:
        text = rng.choice([
            f"La {event} se celebrará en {city} el {when}. Por ahora se han inscrito {count} personas.",
            f"Reserva la fecha: {event}, {when}, en {city}. Asistencia prevista: {count} personas.",
            f"Hay {count} invitados confirmados para la {event}, que será en {city} el {when}.",
        ])
        if event.startswith(("Mercado", "Concierto", "Fin", "Taller", "Maratón")):
            text = text.replace(f"La {event}", f"El {event}").replace(f"para la {event}", f"para el {event}")
        keys = ("evento", "fecha", "ciudad", "asistentes")
    fields = [(keys[0], STRING, event), (keys[1], DATE, day.isoformat()), (keys[2], STRING, city),
              (keys[3], _integer(minimum=0), count)]
    return text, fields


ORDER_STATUS = {
    "en": [("pending", "is still being prepared"), ("shipped", "has been shipped"),
           ("delivered", "was delivered this morning"), ("cancelled", "was cancelled at your request")],
    "es": [("pendiente", "aún se está preparando"), ("enviado", "ya ha sido enviado"),
           ("entregado", "se entregó esta mañana"), ("cancelado", "se canceló a petición suya")],
}


def _jx_order(rng, lang):
    product = brand_product(rng, lang)["name"]
    quantity = rng.randint(1, 24)
    order_id = f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}-{rng.randint(10000, 99999)}"
    status, phrase = rng.choice(ORDER_STATUS[lang])
    first = rng.choice(EN_FIRST if lang == "en" else ES_FIRST)
    if lang == "en":
        text = rng.choice([
            f"Hello {first}, your order {order_id} ({quantity} x {product}) {phrase}.",
            f"Order {order_id}: {quantity} units of {product}. Update: the order {phrase}.",
            f"We wanted to let you know that order {order_id}, containing {quantity} x {product}, {phrase}.",
        ])
        keys = ("order_id", "product", "quantity", "status")
    else:
        text = rng.choice([
            f"Hola, {first}: tu pedido {order_id} ({quantity} x {product}) {phrase}.",
            f"Pedido {order_id}: {quantity} unidades de {product}. Novedad: el pedido {phrase}.",
            f"Te informamos de que el pedido {order_id}, con {quantity} x {product}, {phrase}.",
        ])
        keys = ("id_pedido", "producto", "cantidad", "estado")
    fields = [(keys[0], {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{5}$"}, order_id), (keys[1], STRING, product),
              (keys[2], _integer(minimum=1), quantity),
              (keys[3], {"type": "string", "enum": [s for s, _ in ORDER_STATUS[lang]]}, status)]
    return text, fields


def _jx_review(rng, lang):
    product = brand_product(rng, lang)
    rating = rng.randint(1, 5)
    recommend = rating >= 4 if rng.random() < 0.85 else rating >= 3
    if lang == "en":
        verdict = "I would recommend it to a friend." if recommend else "I would not recommend it."
        text = rng.choice([
            f"I'd give {product['the']} {rating} out of 5. {verdict}",
            f"Rating: {rating}/5 for {product['the']}. {verdict}",
            f"After a month with {product['the']}, my score is {rating} {'star' if rating == 1 else 'stars'} out of 5. {verdict}",
        ])
        keys = ("product", "rating", "recommend")
    else:
        pronoun = product["pronoun"]
        verdict = f"Se {pronoun} recomendaría a un amigo." if recommend else f"No {pronoun} recomendaría."
        text = rng.choice([
            f"Le doy un {rating} de 5 a {product['the']}. {verdict}",
            f"Puntuación: {rating}/5 para {product['the']}. {verdict}",
            f"Tras un mes usando {product['the']}, mi nota es de {rating} {'estrella' if rating == 1 else 'estrellas'} sobre 5. {verdict}",
        ])
        keys = ("producto", "puntuacion", "recomienda")
    fields = [(keys[0], STRING, product["name"]), (keys[1], _integer(1, 5), rating), (keys[2], {"type": "boolean"}, recommend)]
    return text, fields


ROOM_TYPES = {
    "en": [("single", "single room"), ("double", "double room"), ("suite", "suite")],
    "es": [("individual", "habitación individual"), ("doble", "habitación doble"), ("suite", "suite")],
}


def _jx_booking(rng, lang):
    guest = person_name(rng, lang)
    day = random_date(rng)
    when = date_text(rng, day, lang)
    nights = rng.randint(1, 14)
    room, phrase = rng.choice(ROOM_TYPES[lang])
    hotel = "Hotel " + invented_root(rng)
    if lang == "en":
        night_word = "night" if nights == 1 else "nights"
        text = rng.choice([
            f"Booking request from {guest}: {article(phrase)} {phrase} at {hotel} for {nights} {night_word}, arriving on {when}.",
            f"{guest} will check in at {hotel} on {when} and stay {nights} {night_word} in {article(phrase)} {phrase}.",
            f"Reservation confirmed at {hotel}. Guest: {guest}. Arrival: {when}. Length of stay: {nights} {night_word}. Room: {phrase}.",
        ])
        keys = ("guest", "check_in", "nights", "room")
    else:
        night_word = "noche" if nights == 1 else "noches"
        text = rng.choice([
            f"Reserva en el {hotel} a nombre de {guest}: {phrase} durante {nights} {night_word}, con entrada el {when}.",
            f"{guest} llegará al {hotel} el {when} y se alojará {nights} {night_word} en una {phrase}.",
            f"Reserva confirmada en el {hotel}. Huésped: {guest}. Entrada: {when}. Estancia: {nights} {night_word}. Tipo: {phrase}.",
        ])
        keys = ("huesped", "entrada", "noches", "habitacion")
    fields = [(keys[0], STRING, guest), (keys[1], DATE, day.isoformat()), (keys[2], _integer(minimum=1), nights),
              (keys[3], {"type": "string", "enum": [r for r, _ in ROOM_TYPES[lang]]}, room)]
    return text, fields


JOB_ROLES = {
    "en": ["data analyst", "warehouse supervisor", "pastry chef", "junior accountant", "bicycle mechanic",
           "graphic designer", "night nurse", "electrician", "sales assistant", "translator"],
    "es": ["analista de datos", "supervisor de almacén", "pastelero", "contable júnior", "mecánico de bicicletas",
           "diseñador gráfico", "enfermero de noche", "electricista", "dependiente", "traductor"],
}


def _jx_job(rng, lang):
    company = company_name(rng, lang)
    role = rng.choice(JOB_ROLES[lang])
    city = town_name(rng, lang)
    salary = rng.randrange(18000, 62000, 500)
    remote = rng.random() < 0.4
    if lang == "en":
        remote_text = "the job can be done fully remotely" if remote else "the role is on site only"
        text = rng.choice([
            f"{company} is hiring {article(role)} {role} in {city}. The salary is {salary} euros a year and {remote_text}.",
            f"Job offer: {role} at {company} ({city}). Pay: {salary} euros per year. Note: {remote_text}.",
        ])
        keys = ("title", "company", "city", "remote", "salary")
    else:
        remote_text = "se puede trabajar en remoto" if remote else "el puesto es presencial"
        text = rng.choice([
            f"{company} busca {role} en {city}. Salario: {salary} euros al año; {remote_text}.",
            f"Oferta de empleo: {role} en {company} ({city}). Sueldo: {salary} euros anuales. Importante: {remote_text}.",
        ])
        keys = ("puesto", "empresa", "ciudad", "remoto", "salario")
    fields = [(keys[0], STRING, role), (keys[1], STRING, company), (keys[2], STRING, city),
              (keys[3], {"type": "boolean"}, remote), (keys[4], _integer(minimum=0), salary)]
    return text, fields


def _jx_invoice(rng, lang):
    prefix = "INV" if lang == "en" else "FAC"
    number = f"{prefix}-{rng.randint(0, 9999):04d}"
    amount = rng.randint(40, 25000)
    currency = rng.choice(["EUR", "USD", "GBP"])
    day = random_date(rng)
    when = date_text(rng, day, lang)
    company = company_name(rng, lang)
    if lang == "en":
        text = rng.choice([
            f"Invoice {number} from {company}: {amount} {currency}, payable by {when}.",
            f"Please pay invoice {number} ({amount} {currency}) to {company} before {when}.",
            f"Reminder: {company} invoice {number} for {amount} {currency} is due on {when}.",
        ])
        keys = ("invoice_number", "amount", "currency", "due_date")
    else:
        text = rng.choice([
            f"Factura {number} de {company}: {amount} {currency}, a pagar antes del {when}.",
            f"Por favor, abone la factura {number} ({amount} {currency}) a {company} antes del {when}.",
            f"Recordatorio: la factura {number} de {company}, por {amount} {currency}, vence el {when}.",
        ])
        keys = ("numero_factura", "importe", "moneda", "vencimiento")
    fields = [(keys[0], {"type": "string", "pattern": f"^{prefix}-[0-9]{{4}}$"}, number),
              (keys[1], _integer(minimum=0), amount),
              (keys[2], {"type": "string", "enum": ["EUR", "USD", "GBP"]}, currency), (keys[3], DATE, day.isoformat())]
    return text, fields


def _jx_profile(rng, lang):
    person = person_name(rng, lang)
    age = rng.randint(19, 88)
    city = town_name(rng, lang)
    job = rng.choice(JOB_ROLES[lang])
    if lang == "en":
        text = rng.choice([
            f"{person}, {age}, lives in {city} and works as {article(job)} {job}.",
            f"Meet {person}: {article(str(age))} {age}-year-old {job} from {city}.",
            f"Our new volunteer is {person}, who is {age} years old, comes from {city} and works as {article(job)} {job}.",
        ])
        keys = ("name", "age", "city", "occupation")
    else:
        text = rng.choice([
            f"{person}, de {age} años, vive en {city} y trabaja como {job}.",
            f"Te presento a {person}: {job}, {age} años, de {city}.",
            f"Nuestra nueva incorporación es {person}, que tiene {age} años, es de {city} y trabaja como {job}.",
        ])
        keys = ("nombre", "edad", "ciudad", "profesion")
    fields = [(keys[0], STRING, person), (keys[1], _integer(0, 130), age), (keys[2], STRING, city), (keys[3], STRING, job)]
    return text, fields


def _jx_trip(rng, lang):
    person = person_name(rng, lang)
    origin = town_name(rng, lang)
    destination = town_name(rng, lang)
    while destination == origin:
        destination = town_name(rng, lang)
    seats = rng.randint(1, 6)
    day = random_date(rng)
    when = date_text(rng, day, lang)
    if lang == "en":
        seat_word = "seat" if seats == 1 else "seats"
        text = rng.choice([
            f"{person} booked {seats} {seat_word} on the train from {origin} to {destination} for {when}.",
            f"Ticket summary: {origin} to {destination}, {when}, {seats} passenger(s), booked by {person}.",
        ])
        keys = ("origin", "destination", "date", "passengers")
    else:
        seat_word = "plaza" if seats == 1 else "plazas"
        text = rng.choice([
            f"{person} ha reservado {seats} {seat_word} en el tren de {origin} a {destination} para el {when}.",
            f"Resumen del billete: {origin} - {destination}, {when}, {seats} pasajero(s), reservado por {person}.",
        ])
        keys = ("origen", "destino", "fecha", "pasajeros")
    fields = [(keys[0], STRING, origin), (keys[1], STRING, destination), (keys[2], DATE, day.isoformat()),
              (keys[3], _integer(minimum=1), seats)]
    return text, fields


JSON_FAMILIES = [_jx_contact, _jx_event, _jx_order, _jx_review, _jx_booking, _jx_job, _jx_invoice, _jx_profile, _jx_trip]


def json_schema_of(fields) -> dict:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": {key: dict(fragment) for key, fragment, _ in fields},
        "required": [key for key, _, _ in fields],
        "additionalProperties": False,
    }


def _field_hint(key: str, fragment: dict, lang: str) -> str:
    if "enum" in fragment:
        return f"{key} ({'one of' if lang == 'en' else 'uno de'}: {', '.join(fragment['enum'])})"
    kind = fragment["type"]
    if fragment.get("format") == "date":
        hint = "date YYYY-MM-DD" if lang == "en" else "fecha AAAA-MM-DD"
    elif fragment.get("format") == "email":
        hint = "email" if lang == "en" else "correo"
    elif kind == "integer":
        hint = "integer" if lang == "en" else "entero"
    elif kind == "boolean":
        hint = "true/false"
    elif isinstance(kind, list):
        hint = "text or null" if lang == "en" else "texto o null"
    else:
        hint = "text" if lang == "en" else "texto"
    return f"{key} ({hint})"


JSON_INSTRUCTIONS = {
    "en": ["Extract the following fields from the text and reply with compact JSON only: {fields}.",
           "Read the text and return a JSON object with these keys: {fields}. Output only the JSON.",
           "Fill in a JSON object from the text with the fields {fields}. No explanation, JSON only."],
    "es": ["Extrae los siguientes campos del texto y responde solo con JSON compacto: {fields}.",
           "Lee el texto y devuelve un objeto JSON con estas claves: {fields}. Responde únicamente con el JSON.",
           "Rellena un objeto JSON a partir del texto con los campos {fields}. Sin explicaciones, solo JSON."],
}


def make_json_extraction(rng: random.Random, lang: str) -> dict:
    family = rng.choice(JSON_FAMILIES)
    text, fields = family(rng, lang)
    hints = ", ".join(_field_hint(key, fragment, lang) for key, fragment, _ in fields)
    output = {key: value for key, _, value in fields}
    return {
        "task": "json_extraction",
        "instruction": rng.choice(JSON_INSTRUCTIONS[lang]).format(fields=hints),
        "input": text,
        "output": compact_json(output),
        "meta": {"schema": json_schema_of(fields), "should_refuse": False},
        "_fields": fields,
        "_family": family,
    }
