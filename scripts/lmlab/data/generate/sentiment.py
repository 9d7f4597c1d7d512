"""The sentiment task family: invented product and restaurant reviews labelled positive,
negative or neutral."""

from __future__ import annotations

import random
import re

from lmlab.data.generate.names import (
    EN_DISHES,
    EN_WEEKDAYS,
    ES_DISHES,
    ES_WEEKDAYS,
    brand_product,
    restaurant_name,
)


# Negative reviews draw more sentences than positive ones (2-3 vs 1-2 after the optional
# opener): complaints tend to be longer in real review sites, and the datasheet documents it.

SENTIMENT_POOLS = {
    "en": {
        "product_open": ["I bought {thing} {time} ago.", "Got {thing} as a birthday present.",
                         "Ordered {thing} after reading a few reviews.", "We have been using {thing} at home for {time}."],
        "place_open": ["We had dinner at {thing} on {weekday}.", "Went to {thing} for lunch with colleagues.",
                       "Tried {thing} for the first time last weekend.", "Booked a table at {thing} for a family birthday."],
        "product_positive": ["[k]It works perfectly and looks great in the kitchen.", "Honestly one of the best purchases I have made this year.",
                             "Really well built and easy to clean.", "Great value for the money.",
                             "Setup took five minutes and it has been flawless since.", "Exactly as described, and it arrived a day early.",
                             "[e]Quiet, fast and reliable.", "I would happily buy it again.", "Love it!",
                             "[_]Sturdy, light and well finished."],
        "product_negative": ["[e]It stopped working after {n} days.", "[e]The build quality feels cheap and a button is already loose.",
                             "[s]The battery lasts barely an hour, nothing like what the box promises.",
                             "Customer service took {n} days to answer my email and did not solve anything.",
                             "I asked for a refund and I am still waiting.", "[e]It is much louder than I expected.",
                             "The instructions are confusing and two screws were missing.", "Overpriced for what you get.",
                             "I regret buying it.", "[_]The stitching came apart within {n} days.",
                             "It is heavier and bulkier than the photos suggest.", "[l]It arrived with a crack in the lid.",
                             "[s]After the last update it keeps disconnecting every few minutes."],
        "product_neutral": ["It does the job, nothing more and nothing less.", "It is about what you would expect for the price.",
                            "The colour is slightly different from the photo, which is fine.", "Delivery took the usual {n} days.",
                            "Some features are handy, others I never use.", "It is smaller than I thought, but it works.",
                            "Neither great nor terrible."],
        "place_positive": ["The food was delicious and the staff were lovely.", "Best {dish} I have had in years.",
                           "Generous portions and fair prices.", "The terrace is lovely on a sunny evening.",
                           "Service was quick and friendly.", "We will definitely come back.", "A real gem!"],
        "place_negative": ["We waited {n} minutes for our starters even though we had booked.", "The {dish} was cold and far too salty.",
                           "The waiter forgot half of our order and never apologised.", "The bill included two drinks we did not order.",
                           "The room was noisy and the tables were sticky.", "Way too expensive for such small portions.",
                           "We will not be going back.", "When we complained, the manager just shrugged."],
        "place_neutral": ["The {dish} was fine, nothing special.", "Prices are average for the area.",
                          "Service was correct and the place was half full.", "The menu is short but covers the basics.",
                          "It was okay for a quick lunch.", "Some dishes were good, others were forgettable."],
        "times": ["two weeks", "a month", "three months", "half a year"],
    },
    "es": {
        "product_open": ["Compré {thing} hace {time}.", "Me regalaron {thing} por mi cumpleaños.",
                         "Pedí {thing} después de leer varias opiniones.", "Llevamos {time} usando {thing} en casa."],
        "place_open": ["Cenamos en {thing} el {weekday}.", "Fuimos a comer a {thing} con unos compañeros.",
                       "Probamos {thing} por primera vez el fin de semana pasado.", "Reservamos mesa en {thing} para un cumpleaños familiar."],
        "product_positive": ["[k]Funciona de maravilla y queda muy bien en la cocina.", "Sinceramente, una de las mejores compras del año.",
                             "Los acabados son buenos y se limpia en un momento.", "Muy buena relación calidad-precio.",
                             "Lo monté en cinco minutos y desde entonces va perfecto.", "Tal cual lo describen, y llegó un día antes.",
                             "[e]Silencioso, rápido y fiable.", "Lo volvería a comprar sin dudarlo.", "¡Me encanta!",
                             "[_]Resistente, ligero y bien acabado."],
        "product_negative": ["[e]Dejó de funcionar a los {n} días.", "[e]Los acabados dejan mucho que desear y un botón ya se ha soltado.",
                             "[s]La batería dura apenas una hora, nada que ver con lo que promete la caja.",
                             "El servicio de atención tardó {n} días en contestar mi correo y no resolvió nada.",
                             "Pedí la devolución del dinero y sigo esperando.", "[e]Hace mucho más ruido de lo que esperaba.",
                             "Las instrucciones son confusas y faltaban dos tornillos.", "Demasiado caro para lo que ofrece.",
                             "Me arrepiento de la compra.", "[_]Las costuras se abrieron a los {n} días.",
                             "Pesa y abulta más de lo que parece en las fotos.", "[l]Llegó con una grieta en la tapa.",
                             "[s]Desde la última actualización se desconecta cada pocos minutos."],
        "product_neutral": ["Cumple su función, ni más ni menos.", "Es más o menos lo que cabe esperar por ese precio.",
                            "El color es algo distinto al de la foto, pero no importa.", "El envío tardó los {n} días de siempre.",
                            "Algunas funciones son prácticas y otras no las uso nunca.", "Es más pequeño de lo que pensaba, pero funciona.",
                            "Ni fu ni fa."],
        "place_positive": ["La comida estaba buenísima y el personal fue encantador.", "El mejor {dish} que he probado en años.",
                           "Raciones generosas y precios justos.", "La terraza es una maravilla en una tarde de sol.",
                           "El servicio fue rápido y amable.", "Volveremos seguro.", "¡Todo un descubrimiento!"],
        "place_negative": ["Esperamos {n} minutos para los entrantes aunque teníamos reserva.", "El {dish} llegó frío y muy salado.",
                           "El camarero se olvidó de la mitad del pedido y ni se disculpó.",
                           "En la cuenta aparecían dos bebidas que no habíamos pedido.",
                           "El comedor era ruidoso y las mesas estaban pegajosas.", "Demasiado caro para unas raciones tan pequeñas.",
                           "No pensamos volver.", "Cuando nos quejamos, el encargado se encogió de hombros."],
        "place_neutral": ["El {dish} estaba correcto, sin más.", "Los precios son los normales de la zona.",
                          "El servicio fue correcto y el local estaba a medio llenar.", "La carta es corta pero cubre lo básico.",
                          "Estuvo bien para una comida rápida.", "Algunos platos estaban bien y otros no tanto."],
        "times": ["dos semanas", "un mes", "tres meses", "medio año"],
    },
}
SENTIMENT_LABELS = ("positive", "negative", "neutral")
SENTIMENT_SENTENCES = {"positive": (1, 2), "neutral": (1, 3), "negative": (2, 3)}

SENTIMENT_INSTRUCTIONS = {
    "en": ["Classify the sentiment of the review as positive, negative or neutral. Answer with the label only.",
           "Is this review positive, negative or neutral? Reply with one word.",
           "Label the sentiment of this customer review: positive, negative or neutral."],
    "es": ["Clasifica el sentimiento de la reseña como positive, negative o neutral. Responde solo con la etiqueta en inglés.",
           "¿Esta reseña es positive, negative o neutral? Responde con una sola palabra, en inglés.",
           "Etiqueta el sentimiento de esta opinión de cliente: positive, negative o neutral (en inglés)."],
}


def sentiment_review(rng: random.Random, lang: str, label: str) -> str:
    pools = SENTIMENT_POOLS[lang]
    subject = rng.choice(["product", "place"])
    product = brand_product(rng, lang) if subject == "product" else None
    thing = product["the"] if product else restaurant_name(rng, lang)
    low, high = SENTIMENT_SENTENCES[label]
    pool = []
    for sentence in pools[f"{subject}_{label}"]:
        # "[ek]..." fits only items with one of those tags; "[_]" only items with no tag
        # (bags, clothes, furniture). See PRODUCT_ITEMS.
        tag_match = re.match(r"\[([a-z_]+)\]", sentence)
        if tag_match:
            wanted, have = tag_match.group(1), product["tags"]
            if (wanted == "_" and have) or (wanted != "_" and not set(wanted) & set(have)):
                continue
            sentence = sentence[tag_match.end():]
        pool.append(sentence)
    body = rng.sample(pool, min(rng.randint(low, high), len(pool)))
    if rng.random() < 0.6:
        sentences = [rng.choice(pools[f"{subject}_open"])] + body
    else:
        # Without an opener the review must still name what it is about.
        lead = ({"en": "Review of {thing}: ", "es": "Opinión sobre {thing}: "}[lang] if subject == "product"
                else "{thing}: ")
        sentences = [lead + body[0]] + body[1:]
    # Fresh numbers per sentence, so two complaints do not share "after 12 days".
    filled = []
    for sentence in sentences:
        filled.append(sentence.format(
            thing=thing, time=rng.choice(pools["times"]), n=rng.randint(3, 45),
            weekday=rng.choice(EN_WEEKDAYS if lang == "en" else ES_WEEKDAYS),
            dish=rng.choice(EN_DISHES if lang == "en" else ES_DISHES)))
    return " ".join(filled)


def make_sentiment(rng: random.Random, lang: str, label: str | None = None) -> dict:
    label = label or rng.choice(SENTIMENT_LABELS)
    return {
        "task": "sentiment",
        "instruction": rng.choice(SENTIMENT_INSTRUCTIONS[lang]),
        "input": sentiment_review(rng, lang, label),
        "output": label,
        "meta": {"label": label, "should_refuse": False},
    }
