"""Agent tools: a safe calculator, BM25 search over the knowledge base, a field extractor.

Each tool is a plain dict {name, description, parameters (JSON Schema), function}.
`make_tools(kb_rows)` builds the registry the agent loop uses, and `call_tool` is the
one place where a model-chosen tool runs: it turns unknown tools, arguments that fail
the tool's JSON Schema, and exceptions inside the tool into an error record instead of
an exception, so that a bad action becomes an observation for the model, not a crash.

Model text is never passed to eval/exec/compile: the calculator is
`lmlab.core.expression.evaluate_expression`, which parses with `ast.parse(mode="eval")`
and walks the tree through an allow-list.
"""

import datetime
import json
import re

import jsonschema

from lmlab.core.expression import MAX_EXPRESSION_CHARS, ExpressionError, evaluate_expression
from lmlab.core.retrieval import bm25_index
from lmlab.core.text import fold


class ToolError(Exception):
    """A clean, expected tool failure (bad expression, division by zero, ...).

    Its message is shown to the model as the observation."""


# ---------------------------------------------------------------------------------------
# calculator

def format_number(value):
    """Canonical text of a number: integers without '.0', floats to 12 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def calculator(expression):
    """The calculator tool: the expression's value as canonical text, or ToolError."""
    try:
        return format_number(evaluate_expression(expression))
    except ExpressionError as error:
        raise ToolError(str(error)) from None


# ---------------------------------------------------------------------------------------
# search_kb

def tokenize(text):
    """Search and answer tokens: runs of letters and digits of the folded text."""
    return re.findall(r"[^\W_]+", fold(text))


def build_kb_index(rows):
    """BM25 index over kb.jsonl rows (title + text). Build once, search many times."""
    rows = sorted(rows, key=lambda row: row["id"])  # index order must not depend on file order
    doc_tokens = [tokenize(f"{row['title']} {row['text']}") for row in rows]
    # Okapi IDF, k1 = 1.5, b = 0.75; an empty KB gets no index (None).
    bm25 = bm25_index(doc_tokens, k1=1.5, b=0.75, idf="okapi")
    return {"rows": rows, "doc_token_sets": [set(tokens) for tokens in doc_tokens], "bm25": bm25}


def search_kb(index, query, k=3):
    """Top-k KB documents for a query: [{id, title, text, score}], best first, ties by id.

    Only documents sharing at least one token with the query are returned: BM25Okapi's
    idf floor can score unrelated documents above zero (or related ones below zero in a
    tiny corpus), so overlap, not the score sign, decides what is a hit."""
    query_tokens = tokenize(query)
    if index["bm25"] is None or not query_tokens:
        return []
    scores = index["bm25"].get_scores(query_tokens)
    query_set = set(query_tokens)
    hits = [
        (-round(float(score), 6), row["id"], row)
        for score, row, token_set in zip(scores, index["rows"], index["doc_token_sets"])
        if token_set & query_set
    ]
    hits.sort(key=lambda hit: (hit[0], hit[1]))
    return [
        {"id": row["id"], "title": row["title"], "text": row["text"], "score": -negative_score}
        for negative_score, _, row in hits[:k]
    ]


# ---------------------------------------------------------------------------------------
# extract_fields

EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_PATTERN = r"(?<![\w-])\+?\d[\d -]{5,}\d(?![\w-])"
# A number on its own, not the 9 of a model name like 'S9' nor a piece of a date or phone.
NUMBER_PATTERN = r"(?<![\w.-])-?\d+(?:\.\d+)?(?!\w|-\d|\.\d)"
MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}
_MONTH = "(" + "|".join(MONTHS) + ")"
# (pattern on folded text, group order) for: 2025-06-05, 'june 5, 2025', '5 june 2025', '5 de junio de 2025'.
DATE_PATTERNS = (
    (r"\b(\d{4})-(\d{2})-(\d{2})\b", "ymd"),
    (rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", "mdy"),
    (rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:de\s+)?{_MONTH},?\s+(?:de\s+)?(\d{{4}})\b", "dmy"),
)
# Cue words after which a capitalised name follows (matched case-insensitively).
NAME_CUES = r"(?:name is|named|called|this is|meet|add|signed by|contact|guest|nombre es|llamad[oa]|se llama|me llamo|soy|es|contacto|firmado por|de parte de|huesped)"
# 'in'/'en' is a stronger cue for a place than 'de', which also starts names ('Feria de Abril').
PLACE_CUES = (r"(?:in|at|en)", r"(?:from|de|desde)")
CAPITALISED_NAME = r"([A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]+(?:\s+[A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]+){0,3})"
# Field names (folded words) that say which type of value a field holds.
FIELD_TYPE_WORDS = {
    "email": {"email", "mail", "correo"},
    "date": {"date", "fecha", "day", "dia", "check", "entrada", "llegada", "salida", "arrival", "departure"},
    "phone": {"phone", "telephone", "telefono", "tel", "mobile", "movil"},
    "number": {"amount", "number", "total", "price", "quantity", "count", "age", "year", "rating", "score",
               "nights", "units", "passengers", "attendees", "salary", "cantidad", "numero", "precio", "edad",
               "importe", "ano", "puntuacion", "nota", "noches", "unidades", "pasajeros", "asistentes", "salario"},
    "name": {"name", "nombre", "guest", "huesped", "person", "persona"},
    "place": {"city", "town", "ciudad", "localidad"},
}


def _fold_with_offsets(text):
    """fold(text) and, per folded character, its index in `text` (to cut values
    from the original after matching keys without case or accents)."""
    folded, offsets = [], []
    for index, char in enumerate(text):
        for piece in fold(char):
            folded.append(piece)
            offsets.append(index)
    return "".join(folded), offsets


def find_date(text):
    """(ISO date, start, end) of the first valid date written in a supported form, or None."""
    folded, offsets = _fold_with_offsets(text)
    found = []
    for pattern, order in DATE_PATTERNS:
        for match in re.finditer(pattern, folded):
            parts = dict(zip(order, match.groups()))
            month = int(parts["m"]) if parts["m"].isdigit() else MONTHS[parts["m"]]
            try:
                day = datetime.date(int(parts["y"]), month, int(parts["d"]))
            except ValueError:
                continue  # 2025-02-30 is not a date
            found.append((match.start(), match.end(), day.isoformat()))
    if not found:
        return None
    start, end, iso = min(found)
    return iso, offsets[start], offsets[end - 1] + 1


def _without_dates(text):
    """The text with its dates blanked, so '5 June 2025' answers neither 'age' nor 'phone'."""
    while (date := find_date(text)) is not None:
        text = text[: date[1]] + " " * (date[2] - date[1]) + text[date[2]:]
    return text


def _field_type(field):
    words = set(re.split(r"[\W_]+", fold(field))) - {""}
    for field_type, type_words in FIELD_TYPE_WORDS.items():
        if words & type_words:
            return field_type
    return None


def _typed_value(value):
    """A value that is exactly a number becomes int/float, exactly a date becomes ISO."""
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    date = find_date(value)
    if date and date[1] == 0 and date[2] == len(value):
        return date[0]
    return value


def _key_value(text, field):
    """The value after 'field:' or 'field =' (case, accents, '_' ~ ' ' ~ '-' ignored in the key);
    it runs to the end of the line, ';', ',' or a sentence-ending '. '."""
    folded, offsets = _fold_with_offsets(text)
    key_words = [re.escape(word) for word in re.split(r"[\s_-]+", fold(field).strip()) if word]
    if not key_words:
        return None
    key = re.search(r"(?<!\w)" + r"[\s_-]*".join(key_words) + r"\s*[:=]\s*", folded)
    if not key or key.end() >= len(folded):
        return None
    rest = text[offsets[key.end()]:]
    value = re.match(r"(.+?)(?=\.\s|\.$|[\n;,]|$)", rest)
    return value.group(1).strip() if value and value.group(1).strip() else None


def extract_fields(text, fields):
    """Deterministic field extraction: {field: value or None} for each requested field.

    Rules, first that matches wins:
      1. an explicit 'field: value' or 'field = value' in the text (key matched without
         case or accents; the value ends at a line end, ';', ',' or '. ');
      2. by the type the field's name suggests: e-mail (email/correo), date (date/fecha/
         check-in/entrada/...: the first date written as 2025-06-05, 'June 5, 2025',
         '5 June 2025' or '5 de junio de 2025', returned as YYYY-MM-DD), phone
         (phone/telefono: a run of digits, spaces and dashes), number (age/total/rating/
         nights/edad/...: the first standalone number outside dates; after 'key:' the
         leading number), name (name/nombre/guest/huesped: capitalised words after a cue
         such as 'name is', 'meet', 'this is', 'soy', else two or more capitalised words
         opening the text), place (city/ciudad/town: the capitalised word after in/at/en, else
         after from/de).
    Limits: no semantics (yes/no fields such as 'recommend', job titles, company or city
    names without a 'key:' are not found); the first candidate wins even when the text
    holds several (the first number may be the wrong one); values with commas are cut.
    Pure numbers become int/float, whole dates become ISO, everything else stays text."""
    result = {}
    for field in fields:
        value = _key_value(text, field)
        field_type = _field_type(field)
        if value is not None and field_type == "number" and re.match(NUMBER_PATTERN, value):
            value = _typed_value(re.match(NUMBER_PATTERN, value).group(0))  # 'Rating: 2/5' -> 2
        elif value is not None:
            value = _typed_value(value)
        elif field_type == "email":
            found = re.search(EMAIL_PATTERN, text)
            value = found.group(0) if found else None
        elif field_type == "date":
            found = find_date(text)
            value = found[0] if found else None
        elif field_type == "phone":
            found = re.search(PHONE_PATTERN, _without_dates(text))
            value = found.group(0) if found else None
        elif field_type == "number":
            found = re.search(NUMBER_PATTERN, _without_dates(text))
            value = _typed_value(found.group(0)) if found else None
        elif field_type == "name":
            # The cue is case-insensitive through (?i:...) only; the name must be capitalised.
            found = re.search(rf"\b(?i:{NAME_CUES})[:,]?\s+{CAPITALISED_NAME}", text)
            # Without a cue, two or more capitalised words opening the text ('Owen Fallowworth, 37, ...').
            found = found or re.match(r"\s*([A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]+(?:\s+[A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]+){1,3})\b", text)
            value = found.group(1) if found else None
        elif field_type == "place":
            found = [re.search(rf"\b(?i:{cues})\s+([A-ZÁÉÍÓÚÑ][\wáéíóúñü'-]+)", text) for cues in PLACE_CUES]
            found = next((match for match in found if match), None)
            value = found.group(1) if found else None
        result[field] = value
    return result


# ---------------------------------------------------------------------------------------
# registry and the guarded call

# Schema bounds on model-written arguments, so no call can be made expensive.
MAX_QUERY_CHARS = 300
MAX_EXTRACT_TEXT_CHARS = 5000

TOOL_SPECS = {
    "calculator": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression (+ - * / // % **, parentheses, "
        "sqrt abs round min max log exp floor ceil). Returns the number.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION_CHARS}},
            "required": ["expression"],
            "additionalProperties": False,
        },
    },
    "search_kb": {
        "name": "search_kb",
        "description": "Search the knowledge base of facts. Returns the k best documents (id, title, text, score).",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
                "k": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    "extract_fields": {
        "name": "extract_fields",
        "description": "Extract named fields from a text ('key: value', e-mails, YYYY-MM-DD dates, "
        "numbers, names). Returns an object with null for fields not found.",
        "parameters": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": MAX_EXTRACT_TEXT_CHARS},
                "fields": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            },
            "required": ["text", "fields"],
            "additionalProperties": False,
        },
    },
}
TOOL_NAMES = tuple(TOOL_SPECS)


def make_tools(kb_rows):
    """Registry {name: {name, description, parameters, function, validator}} over one KB."""
    kb_index = build_kb_index(kb_rows)
    functions = {
        "calculator": lambda arguments: calculator(arguments["expression"]),
        "search_kb": lambda arguments: search_kb(kb_index, arguments["query"], arguments.get("k", 3)),
        "extract_fields": lambda arguments: extract_fields(arguments["text"], arguments["fields"]),
    }
    return {
        name: {
            **spec,
            "function": functions[name],
            "validator": jsonschema.Draft202012Validator(spec["parameters"]),
        }
        for name, spec in TOOL_SPECS.items()
    }


def call_tool(tools, name, arguments):
    """Run one model-chosen tool call; never raises.

    Returns {"output": value or None, "error": None or {"type", "message"}} with type in
    unknown_tool (hallucinated name), invalid_arguments (JSON Schema), tool_error (clean
    ToolError) or tool_exception (anything else the tool raised: a bug, but the run goes on)."""
    if name not in tools:
        message = f"unknown tool {name!r}; available tools: {', '.join(sorted(tools))}"
        return {"output": None, "error": {"type": "unknown_tool", "message": message}}
    schema_error = jsonschema.exceptions.best_match(tools[name]["validator"].iter_errors(arguments))
    if schema_error is not None:
        where = "/".join(str(part) for part in schema_error.absolute_path) or "arguments"
        message = f"invalid arguments for {name}: {where}: {schema_error.message}"
        return {"output": None, "error": {"type": "invalid_arguments", "message": message}}
    try:
        return {"output": tools[name]["function"](arguments), "error": None}
    except ToolError as error:
        return {"output": None, "error": {"type": "tool_error", "message": f"{name}: {error}"}}
    except Exception as error:  # noqa: BLE001 - a tool bug must become an observation, not a crash
        return {"output": None, "error": {"type": "tool_exception", "message": f"{name}: {type(error).__name__}: {error}"}}


def render_tool_output(output, max_chars=600):
    """Observation text of a tool result: numbers and strings as is, the rest as compact JSON."""
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."
