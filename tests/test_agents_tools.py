"""Agent tools: the calculator against hostile input, BM25 search over the KB, field
extraction, and the guarded tool call. The evaluator behind the calculator is checked
against Python's own arithmetic in test_core_expression.py."""

import pytest

from lmlab.agents import tools
from lmlab.agents.tools import (
    ToolError,
    build_kb_index,
    calculator,
    call_tool,
    extract_fields,
    make_tools,
    search_kb,
)
from lmlab.core.expression import MAX_EXPRESSION_CHARS

# ---------------------------------------------------------------------------------------
# calculator: allowed arithmetic


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("6 / 3", "2"),  # true division of ints: canonical text drops '.0'
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("-3 + +5", "2"),
        ("0.1 + 0.2", "0.3"),  # 12 significant digits hide the binary rounding
        ("sqrt(16)", "4"),
        ("abs(-2.5)", "2.5"),
        ("round(3.14159, 2)", "3.14"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("floor(2.7) + ceil(2.1)", "5"),
        ("log(8, 2)", "3"),
        ("exp(0)", "1"),
        ("  1_000 + 1 ", "1001"),
    ],
)
def test_calculator_allowed_arithmetic(expression, expected):
    assert calculator(expression) == expected


def test_calculator_keeps_exact_integers():
    assert calculator("3 ** 40") == str(3**40)


# ---------------------------------------------------------------------------------------
# calculator: hostile input

HOSTILE_EXPRESSIONS = [
    "().__class__.__mro__[1].__subclasses__()",
    "().__class__",
    "__import__('os')",
    "__import__('os').system('echo pwned')",
    "open('/etc/passwd')",
    "eval('1')",
    "x",
    "x + 1",
    "pi",
    "lambda: 1",
    "(lambda: 1)()",
    "[i for i in range(3)]",
    "{i: i for i in (1, 2)}",
    "(i for i in (1,))",
    "(1, 2)[0]",
    "[1, 2][0]",
    "'abc'",
    "'a' * 3",
    "b'abc'",
    "f'{1}'",
    "9**9**9",
    "10**1000",
    "2 ** 101",
    "99 ** 99",
    "(10 ** 60) * (10 ** 60)",
    "1e400",
    "1e200 * 1e200",
    "True",
    "True + 1",
    "1j",
    "1 + 2j",
    "abs(x=1)",
    "round(1.5, ndigits=1)",
    "max(*(1, 2))",
    "max(*[1, 2])",
    "min(**{})",
    "round(5, -1000000)",
    "round(5, 1.5)",
    "math.sqrt(4)",
    "sqrt.__call__(4)",
    "1 if 1 else 2",
    "1 < 2",
    "not 1",
    "1 and 2",
    "~1",
    "1 << 2",
    "1 | 2",
    "1 @ 2",
    "(x := 1)",
    "...",
    "None",
    "1 / 0",
    "1 // 0",
    "1 % 0",
    "0 ** -1",
    "1.5 / 0.0",
    "sqrt(-1)",
    "log(0)",
    "log(8, 1)",
    "exp(1000)",
    "(-8) ** 0.5",
    "floor(1e200)",
    "sum(1, 2)",
    "max(1)",
    "sqrt(1, 2)",
    "",
    "   ",
    "1 +",
    "((1)",
    "1; 2",
    "import os",
    "١٢",  # Arabic-Indic digits
    "١٢ + 1",
    "１２",  # fullwidth digits
    "１ + 1",
    "ｅｖａｌ('1')",  # fullwidth letters normalise to eval in Python's parser
    "1\u00a0+ 1",  # no-break space
]


@pytest.mark.parametrize("expression", HOSTILE_EXPRESSIONS)
def test_calculator_refuses_hostile_or_invalid_input(expression):
    with pytest.raises(ToolError):
        calculator(expression)


def test_calculator_refuses_deep_nesting_and_long_input():
    with pytest.raises(ToolError, match="longer than"):
        calculator("(" * 1000 + "1" + ")" * 1000)
    with pytest.raises(ToolError, match="longer than"):
        calculator("1+" * 500 + "1")
    nested_within_length = "-(" * 50 + "1" + ")" * 50
    assert len(nested_within_length) <= MAX_EXPRESSION_CHARS
    with pytest.raises(ToolError, match="deeper"):
        calculator(nested_within_length)
    nested_calls = "abs(" * 30 + "1" + ")" * 30
    with pytest.raises(ToolError, match="deeper"):
        calculator(nested_calls)


def _balanced(leaves):
    # A shallow tree of many nodes: ((-1+-1)+(-1+-1))...
    if len(leaves) == 1:
        return leaves[0]
    middle = len(leaves) // 2
    return f"({_balanced(leaves[:middle])}+{_balanced(leaves[middle:])})"


def test_calculator_refuses_too_many_nodes_in_a_shallow_tree():
    expression = _balanced(["-1"] * 40)
    assert len(expression) <= MAX_EXPRESSION_CHARS
    with pytest.raises(ToolError, match="parts"):
        calculator(expression)
    # The same shape with fewer leaves is fine, so it is the node bound that refused.
    assert calculator(_balanced(["-1"] * 8)) == "-8"


def test_calculator_never_reaches_eval(monkeypatch):
    import ast
    import builtins

    real_compile = builtins.compile
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("eval/exec called")

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to an AST only; compiling to code would be the escape.
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(source)
            raise AssertionError("compile to code called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "eval", forbidden)
        patch.setattr(builtins, "exec", forbidden)
        patch.setattr(builtins, "compile", ast_only_compile)
        assert calculator("1 + 2") == "3"
        with pytest.raises(ToolError):
            calculator("__import__('os')")
    assert calls == []


def test_calculator_refuses_non_string():
    with pytest.raises(ToolError):
        calculator(12)


# ---------------------------------------------------------------------------------------
# search_kb

KB_ROWS = [
    {"id": "kb-003", "lang": "en", "title": "Zorvex Corporation", "text": "Zorvex was founded in 1987 by Marta Quiroga in Veltria."},
    {"id": "kb-001", "lang": "es", "title": "Lumina", "text": "Lumina fue fundada en 1990 en Sevilla por Pedro Núñez."},
    {"id": "kb-002", "lang": "en", "title": "Orbital river", "text": "The Orbital river is 412 km long."},
    {"id": "kb-005", "lang": "en", "title": "Twin B", "text": "Kestrel harbour opened in 1901."},
    {"id": "kb-004", "lang": "en", "title": "Twin A", "text": "Kestrel harbour opened in 1901."},
]


def test_search_kb_ranks_the_matching_document_first():
    index = build_kb_index(KB_ROWS)
    hits = search_kb(index, "When was Zorvex founded?", k=3)
    assert hits[0]["id"] == "kb-003"
    assert set(hits[0]) == {"id", "title", "text", "score"}
    assert all(hits[i]["score"] >= hits[i + 1]["score"] for i in range(len(hits) - 1))


def test_search_kb_folds_case_and_accents():
    index = build_kb_index(KB_ROWS)
    assert search_kb(index, "NUNEZ", k=1)[0]["id"] == "kb-001"
    assert search_kb(index, "fundó lúmina", k=1)[0]["id"] == "kb-001"


def test_search_kb_breaks_ties_by_id_and_ignores_row_order():
    hits = search_kb(build_kb_index(KB_ROWS), "Kestrel harbour", k=2)
    assert [hit["id"] for hit in hits] == ["kb-004", "kb-005"]
    assert hits[0]["score"] == hits[1]["score"]
    reversed_hits = search_kb(build_kb_index(list(reversed(KB_ROWS))), "Kestrel harbour", k=2)
    assert reversed_hits == hits


def test_search_kb_respects_k_and_returns_nothing_without_overlap():
    index = build_kb_index(KB_ROWS)
    assert len(search_kb(index, "in", k=2)) == 2
    assert search_kb(index, "completely unrelated words", k=3) == []
    assert search_kb(index, "   ", k=3) == []
    assert search_kb(build_kb_index([]), "Zorvex", k=3) == []


# ---------------------------------------------------------------------------------------
# extract_fields


def test_extract_fields_key_value_patterns_and_types():
    text = "Name: Ana Pérez, Email: ana@example.com\nAmount = 42\nDue date: 2024-05-01; ref = A-17"
    found = extract_fields(text, ["name", "email", "amount", "due_date", "ref", "phone"])
    assert found == {
        "name": "Ana Pérez", "email": "ana@example.com", "amount": 42,
        "due_date": "2024-05-01", "ref": "A-17", "phone": None,
    }


def test_extract_fields_falls_back_on_field_types():
    text = "Please contact Juan Gómez at juan.gomez@example.org about invoice 17, due 2023-01-09."
    found = extract_fields(text, ["name", "email", "date", "invoice_number"])
    assert found == {"name": "Juan Gómez", "email": "juan.gomez@example.org", "date": "2023-01-09", "invoice_number": 17}


@pytest.mark.parametrize(
    "text, fields, expected",
    [
        # natural-language dates in English and Spanish become ISO
        ("The Seed Swap Day will take place in Dornby on June 5, 2025.", ["date", "city"],
         {"date": "2025-06-05", "city": "Dornby"}),
        ("Kim will check in on 9 July 2025 and stay 10 nights.", ["check_in", "nights"],
         {"check_in": "2025-07-09", "nights": 10}),
        ("El mercado será en Villaroca el 27 de febrero de 2025. Hay 106 inscritos.", ["fecha", "ciudad"],
         {"fecha": "2025-02-27", "ciudad": "Villaroca"}),
        # keys match without accents or case; a whole-date value becomes ISO; '. ' ends a value
        ("Reserva. Huésped: Diego Varriel. Entrada: 10 de junio de 2026. Estancia: 2 noches.",
         ["huesped", "entrada", "estancia"], {"huesped": "Diego Varriel", "entrada": "2026-06-10", "estancia": "2 noches"}),
        # a number field after 'key:' takes the leading number; '54-year-old' is 54 and 'S9' is not a number
        ("Rating: 2/5 for the Brivar R7 tent.", ["rating"], {"rating": 2}),
        ("Meet Leah Pimmley: a 54-year-old mechanic from Quinford.", ["name", "age", "city"],
         {"name": "Leah Pimmley", "age": 54, "city": "Quinford"}),
        ("After a month with the Kadiva S9 tent, my score is 1 stars out of 5.", ["score"], {"score": 1}),
        # a name opening the text; dates are neither ages nor phone numbers
        ("Owen Fallowworth, 37, lives in Yarford.", ["name", "age"], {"name": "Owen Fallowworth", "age": 37}),
        ("Born 2001-03-04. Call 555-0139 please.", ["phone", "age"], {"phone": "555-0139", "age": None}),
        ("Sent on 2025-02-30 by mistake", ["date"], {"date": None}),  # not a real date
    ],
)
def test_extract_fields_types_dates_and_cues(text, fields, expected):
    assert extract_fields(text, fields) == expected


def test_extract_fields_is_honest_about_missing_values():
    found = extract_fields("nothing useful here, contact someone later", ["name", "email", "date", "total"])
    assert found == {"name": None, "email": None, "date": None, "total": None}


# ---------------------------------------------------------------------------------------
# call_tool: errors become records, never exceptions


@pytest.fixture
def registry():
    return make_tools(KB_ROWS)


def test_call_tool_runs_valid_calls(registry):
    assert call_tool(registry, "calculator", {"expression": "6 * 7"}) == {"output": "42", "error": None}
    result = call_tool(registry, "search_kb", {"query": "Zorvex", "k": 1})
    assert result["error"] is None and [hit["id"] for hit in result["output"]] == ["kb-003"]


@pytest.mark.parametrize(
    "name, arguments, error_type",
    [
        ("weather", {"city": "Paris"}, "unknown_tool"),
        ("Calculator", {"expression": "1"}, "unknown_tool"),
        ("calculator", {}, "invalid_arguments"),
        ("calculator", {"expression": 12}, "invalid_arguments"),
        ("calculator", {"expression": "1", "extra": 1}, "invalid_arguments"),
        ("search_kb", {"query": "Zorvex", "k": "3"}, "invalid_arguments"),
        ("search_kb", {"query": "Zorvex", "k": True}, "invalid_arguments"),
        ("search_kb", {"query": "Zorvex", "k": 0}, "invalid_arguments"),
        ("extract_fields", {"text": "a", "fields": "name"}, "invalid_arguments"),
        ("calculator", {"expression": "1 / 0"}, "tool_error"),
        ("calculator", {"expression": "__import__('os')"}, "tool_error"),
    ],
)
def test_call_tool_reports_errors(registry, name, arguments, error_type):
    result = call_tool(registry, name, arguments)
    assert result["output"] is None
    assert result["error"]["type"] == error_type
    assert result["error"]["message"]


def test_call_tool_turns_a_tool_bug_into_an_error_record(registry):
    def broken(arguments):
        raise RuntimeError("boom")

    registry["search_kb"]["function"] = broken
    result = call_tool(registry, "search_kb", {"query": "Zorvex"})
    assert result["error"]["type"] == "tool_exception"
    assert "boom" in result["error"]["message"]


def test_tool_specs_have_schemas_and_descriptions(registry):
    assert set(registry) == {"calculator", "search_kb", "extract_fields"}
    for spec in registry.values():
        assert spec["description"] and spec["parameters"]["type"] == "object"
        assert callable(spec["function"])
    assert tools.TOOL_NAMES == ("calculator", "search_kb", "extract_fields")
