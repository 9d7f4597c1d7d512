"""Word lists and the invented entities built from them: towns, people, companies, products,
restaurants, rivers, and dates written out in English or Spanish.

Every entity is invented from syllable lists, so facts about them can only be answered
from `kb.jsonl` or from the item's input.
"""

from __future__ import annotations

import datetime
import random


EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
ES_MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
             "septiembre", "octubre", "noviembre", "diciembre"]
EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ES_WEEKDAYS = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
EN_SEASONS = ["spring", "summer", "autumn", "winter"]
ES_SEASONS = ["primavera", "verano", "otoño", "invierno"]

# Syllables for invented names. Entities in the knowledge base use their own syllables, so
# no other item can mention a KB company with facts that contradict the KB.
NAME_HEADS = ["Vel", "Dren", "Quin", "Tars", "Bry", "Zel", "Orn", "Grev", "Lum", "Pax", "Rov",
              "Wen", "Yar", "Brun", "Cael", "Fen", "Ith", "Jor", "Kest", "Mav", "Ost", "Rask",
              "Ulv", "Vask", "Wyl", "Zor", "Ebr", "Thal", "Nim", "Sorv"]
NAME_TAILS = ["dora", "vik", "nex", "quell", "bant", "ossa", "ivar", "enna", "orra", "ulis",
              "eth", "avel", "omir", "ensk", "idor", "olt", "erin", "amar", "ibo", "eska", "ux", "ane"]
KB_HEADS = ["Alv", "Bex", "Corm", "Dusk", "Elbr", "Farn", "Gild", "Hov", "Isk", "Jast", "Korv",
            "Liss", "Mord", "Nask", "Oxl", "Prav", "Quel", "Rilt", "Stov", "Trev", "Umbr", "Varn",
            "Wexl", "Yst"]
KB_TAILS = ["ana", "eco", "ona", "etta", "iro", "ova", "und", "ek", "arra", "ilo", "emo", "aks", "ynn", "oria"]

EN_TOWN_HEADS = ["Ost", "Vask", "Kest", "Zel", "Ulv", "Rask", "Thal", "Quin", "Mav", "Ith", "Grev",
                 "Dren", "Yar", "Wyl", "Nim", "Orn", "Cael", "Jor", "Lum", "Brun"]
EN_TOWN_TAILS = ["ford", "wick", "mere", "holt", "dale", "stead", "moor", "combe", "haven", "bury"]
ES_TOWN_HEADS = ["Villa", "Torre", "Castro", "Fuente", "Val", "Navas", "Quinta"]
ES_TOWN_TAILS = ["brena", "dorna", "tesca", "morva", "lusca", "cerna", "gosta", "rivena", "sauca",
                 "terbe", "zarna", "vellar", "ostia", "quemba", "lindra", "faruca"]
RIVERS = ["Velna", "Kavel", "Durra", "Mirel", "Sanve", "Tolva", "Brisk", "Orvana", "Lessa", "Quarn",
          "Ebrisa", "Haldo", "Yelva", "Corvel"]
VALLEYS = ["Ambrel", "Sorvana", "Tidra", "Kelvoz", "Morrin", "Ulvara", "Pessel", "Grenza"]
HILLS = ["Carvel", "Ostran", "Maldre", "Tiveno", "Brask", "Olvira"]

EN_FIRST = ["Oliver", "Hannah", "Marcus", "Priya", "Owen", "Grace", "Samuel", "Leah", "Tobias", "Maya",
            "Isaac", "Nora", "Felix", "Ruby", "Adrian", "Chloe", "Jonah", "Iris", "Declan", "Esther",
            "Rowan", "Alice", "Theo", "Clara"]
ES_FIRST = ["Lucía", "Mateo", "Irene", "Tomás", "Carmen", "Hugo", "Noelia", "Andrés", "Elena", "Rubén",
            "Marta", "Iván", "Sofía", "Julián", "Pilar", "Diego", "Alba", "Gonzalo", "Inés", "Rodrigo",
            "Nuria", "Álvaro", "Rocío", "Sergio"]
EN_SURNAME_HEADS = ["Hollin", "Brack", "Tren", "Wedd", "Corm", "Fallow", "Pimm", "Quarr", "Ashen",
                    "Stroud", "Vell", "Kipp", "Grisel", "Murr", "Oakt", "Dewl"]
EN_SURNAME_TAILS = ["ley", "worth", "ridge", "field", "more", "well", "by", "combe", "hart"]
ES_SURNAME_HEADS = ["Castel", "Varr", "Olm", "Brav", "Lind", "Morr", "Garv", "Ruv", "Zamb", "Arriz",
                    "Quel", "Torm", "Sabr", "Ulz", "Fenoll", "Trev"]
ES_SURNAME_TAILS = ["ado", "endo", "illa", "ón", "ales", "iel", "ueta", "aga", "ino"]

# (sector, en company suffix, es company prefix, en kind, es kind (feminine), en products, es products)
SECTORS = [
    ("food", "Foods", "Conservas", "food company", "empresa de alimentación",
     ["canned sardines", "oat biscuits", "smoked cheeses", "apricot jams"],
     ["sardinas en lata", "galletas de avena", "quesos ahumados", "mermeladas de albaricoque"]),
    ("textiles", "Textiles", "Textiles", "textile maker", "empresa textil",
     ["wool blankets", "linen shirts", "rain jackets", "hiking socks"],
     ["mantas de lana", "camisas de lino", "chubasqueros", "calcetines de montaña"]),
    ("robotics", "Robotics", "Robótica", "robotics company", "empresa de robótica",
     ["warehouse robots", "robotic lawn mowers", "drone docking stations", "robotic arms for bakeries"],
     ["robots de almacén", "cortacéspedes robóticos", "bases de carga para drones", "brazos robóticos para panaderías"]),
    ("instruments", "Instruments", "Instrumentos", "scientific instrument maker", "empresa de instrumentos científicos",
     ["weather stations", "digital microscopes", "soil moisture sensors", "pocket spectrometers"],
     ["estaciones meteorológicas", "microscopios digitales", "sensores de humedad del suelo", "espectrómetros de bolsillo"]),
    ("ceramics", "Ceramics", "Cerámicas", "ceramics workshop", "fábrica de cerámica",
     ["glazed floor tiles", "stoneware mugs", "clay roof tiles", "hand-painted plates"],
     ["baldosas esmaltadas", "tazas de gres", "tejas de barro", "platos pintados a mano"]),
    ("publishing", "Press", "Ediciones", "publishing house", "editorial",
     ["hiking guides", "children's atlases", "poetry anthologies", "cookbooks"],
     ["guías de senderismo", "atlas infantiles", "antologías de poesía", "libros de cocina"]),
    ("logistics", "Logistics", "Transportes", "logistics company", "empresa de transporte",
     ["refrigerated delivery vans", "parcel lockers", "route planning tools", "cargo bike fleets"],
     ["furgonetas de reparto refrigeradas", "taquillas de paquetería", "herramientas de planificación de rutas",
      "flotas de bicicletas de carga"]),
    ("energy", "Energy", "Energías", "energy company", "empresa de energía",
     ["solar water pumps", "small wind turbines", "home batteries", "heat pumps"],
     ["bombas de agua solares", "pequeñas turbinas eólicas", "baterías domésticas", "bombas de calor"]),
    ("bicycles", "Cycles", "Bicicletas", "bicycle maker", "fábrica de bicicletas",
     ["folding bicycles", "cargo bikes", "bike lights", "tandem bicycles"],
     ["bicicletas plegables", "bicicletas de carga", "luces para bicicleta", "bicicletas tándem"]),
    ("software", "Software", "Soluciones", "software company", "empresa de software",
     ["accounting apps", "booking apps", "school timetable planners", "inventory dashboards"],
     ["aplicaciones de contabilidad", "aplicaciones de reservas", "planificadores de horarios escolares",
      "paneles de inventario"]),
]

EN_COLORS = ["green", "blue", "grey", "orange", "turquoise", "violet"]
ES_COLORS = ["verde", "azul", "gris", "naranja", "turquesa", "violeta"]  # invariable in gender
EN_ANIMALS = ["heron", "fox", "owl", "whale", "deer", "turtle", "lynx", "bee", "otter", "hare"]
ES_ANIMALS = ["una garza", "un zorro", "un búho", "una ballena", "un ciervo", "una tortuga", "un lince",
              "una abeja", "una nutria", "una liebre"]

# (en item, es item, es gender, tags) for reviews, orders and launches. Tags say which review
# sentences fit the item: e = electric, s = smart (app, updates, battery), k = kitchen, l = has a lid.
PRODUCT_ITEMS = [
    ("kettle", "hervidor", "m", "ekl"), ("blender", "batidora", "f", "ekl"), ("desk lamp", "lámpara de escritorio", "f", "e"),
    ("backpack", "mochila", "f", ""), ("coffee grinder", "molinillo de café", "m", "ekl"),
    ("rain jacket", "chubasquero", "m", ""), ("electric toothbrush", "cepillo de dientes eléctrico", "m", "es"),
    ("air fryer", "freidora de aire", "f", "ekl"), ("office chair", "silla de oficina", "f", ""),
    ("water bottle", "botella térmica", "f", "l"), ("bluetooth speaker", "altavoz bluetooth", "m", "es"),
    ("robot vacuum", "robot aspirador", "m", "es"), ("toaster", "tostadora", "f", "ek"),
    ("hair dryer", "secador de pelo", "m", "e"), ("e-reader", "lector de libros electrónicos", "m", "es"),
    ("smartwatch", "reloj inteligente", "m", "es"), ("pressure cooker", "olla exprés", "f", "kl"),
    ("camping tent", "tienda de campaña", "f", ""),
]
BRAND_HEADS = ["Zel", "Quor", "Briv", "Lumo", "Tav", "Okt", "Nuv", "Pexa", "Rimo", "Sable", "Volt", "Kadi"]
BRAND_TAILS = ["nex", "va", "ex", "ion", "ra", "ix", "o", "ar", "ena", "umi"]

EN_DISHES = ["paella", "lamb stew", "mushroom risotto", "fish pie", "lemon tart", "pizza", "ramen",
             "roast chicken", "vegetable curry"]
ES_DISHES = ["arroz negro", "cordero asado", "risotto de setas", "pulpo a la brasa", "cocido", "solomillo",
             "bacalao al pil pil", "pescado del día", "menú del día"]
FESTIVALS = {"en": ["Lantern", "Harvest", "Folk Music", "Street Theatre", "Cheese", "Kite", "Jazz", "Puppet"],
             "es": ["de las Linternas", "de la Cosecha", "de Música Folk", "de Teatro de Calle", "del Queso",
                    "de Cometas", "de Jazz", "de Títeres"]}


def _pick_root(rng: random.Random, heads, tails) -> str:
    return rng.choice(heads) + rng.choice(tails)


def invented_root(rng: random.Random) -> str:
    return _pick_root(rng, NAME_HEADS, NAME_TAILS)


def town_name(rng: random.Random, lang: str) -> str:
    if lang == "en":
        return _pick_root(rng, EN_TOWN_HEADS, EN_TOWN_TAILS)
    return _pick_root(rng, ES_TOWN_HEADS, ES_TOWN_TAILS)


def person_name(rng: random.Random, lang: str) -> str:
    if lang == "en":
        return f"{rng.choice(EN_FIRST)} {_pick_root(rng, EN_SURNAME_HEADS, EN_SURNAME_TAILS)}"
    return f"{rng.choice(ES_FIRST)} {_pick_root(rng, ES_SURNAME_HEADS, ES_SURNAME_TAILS)}"


def company_name(rng: random.Random, lang: str, sector=None, root: str | None = None) -> str:
    sector = sector or rng.choice(SECTORS)
    root = root or invented_root(rng)
    return f"{root} {sector[1]}" if lang == "en" else f"{sector[2]} {root}"


def brand_product(rng: random.Random, lang: str) -> dict:
    """An invented product: its bare name and, for Spanish, the name with its article."""
    item_en, item_es, gender, tags = rng.choice(PRODUCT_ITEMS)
    brand = _pick_root(rng, BRAND_HEADS, BRAND_TAILS)
    model = f"{rng.choice('KMXSTVR')}{rng.randint(1, 9)}"
    if lang == "en":
        name = f"{brand} {model} {item_en}"
        return {"name": name, "the": f"the {name}", "item": item_en, "pronoun": "it", "tags": tags}
    name = f"{item_es} {brand} {model}"
    return {"name": name, "the": ("el " if gender == "m" else "la ") + name, "item": item_es,
            "pronoun": "lo" if gender == "m" else "la", "tags": tags}


def restaurant_name(rng: random.Random, lang: str) -> str:
    root = invented_root(rng)
    if lang == "en":
        return rng.choice([f"The {root} Kitchen", f"{root} Bistro", f"Café {root}", f"The {root} Grill"])
    return rng.choice([f"Casa {root}", f"Taberna {root}", f"Mesón {root}", f"Restaurante {root}"])


def river_name(rng: random.Random) -> str:
    return rng.choice(RIVERS)


def random_date(rng: random.Random) -> datetime.date:
    start = datetime.date(2024, 1, 1).toordinal()
    end = datetime.date(2026, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(start, end))


def date_text(rng: random.Random, day: datetime.date, lang: str) -> str:
    if lang == "en":
        month = EN_MONTHS[day.month - 1]
        return rng.choice([f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}"])
    return f"{day.day} de {ES_MONTHS[day.month - 1]} de {day.year}"
