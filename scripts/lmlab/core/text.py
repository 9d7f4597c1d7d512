"""Text folding shared by scoring, validation, retrieval and the data generator."""

import unicodedata


def fold(text):
    """Casefold and strip accents: 'Fundó' -> 'fundo', 'Straße' -> 'strasse'.

    NFKD splits 'é' into 'e' + a combining accent, which is dropped; it also folds
    ligatures and full-width forms, so visually equal answers compare equal.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
