"""The one arithmetic evaluator (lmlab.core.expression), which the agents' calculator tool
and the data generator share: exact values, agreement with Python's own arithmetic, and
refusal of every construct outside the allow-list wherever it sits in the tree. The same
evaluator's hostile-input and bound checks run through the tool in test_agents_tools.py."""

import math
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.core.expression import ExpressionError, evaluate_expression


def test_evaluator_keeps_exact_integers():
    assert isinstance(evaluate_expression("10 // 3"), int)
    assert evaluate_expression("3 ** 40") == 3**40


def test_generator_gold_expressions_evaluate_and_the_rest_is_refused():
    # The generator's gold expressions: integer literals, + - * / // %, parentheses.
    assert evaluate_expression("2 * (3 + 4) // 5 % 3") == 2
    assert evaluate_expression("(4 + 5 + 6) / 3") == 5.0
    with pytest.raises(ValueError):  # ExpressionError is a ValueError
        evaluate_expression("().__class__")


def test_refusals_are_expression_errors_with_a_reason():
    for expression, reason in (("1 / 0", "division by zero"), ("x", "Name is not allowed"),
                               ("2 ** 101", "exponent too large"), ("1" * 201, "longer than")):
        with pytest.raises(ExpressionError, match=reason):
            evaluate_expression(expression)


# ---------------------------------------------------------------------------------------
# property tests against Python's own arithmetic

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}
LEAVES = st.one_of(
    st.integers(min_value=0, max_value=50).map(lambda value: (str(value), value)),
    st.sampled_from([0.5, 1.25, 2.0, 3.75, 10.5]).map(lambda value: (repr(value), value)),
)


def _combine(children):
    # (text, thunk) pairs: the reference value is computed with operator functions, lazily,
    # so a division by zero in the reference shows up when the test evaluates it.
    def binary(triple):
        (left_text, left), symbol, (right_text, right) = triple
        return (f"({left_text} {symbol} {right_text})", lambda: OPERATORS[symbol](left(), right()))

    def negate(child):
        text, value = child
        return (f"-({text})", lambda: -value())

    return st.one_of(
        st.tuples(children, st.sampled_from(sorted(OPERATORS)), children).map(binary),
        children.map(negate),
    )


EXPRESSIONS = st.recursive(LEAVES.map(lambda leaf: (leaf[0], lambda: leaf[1])), _combine, max_leaves=8)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(EXPRESSIONS)
def test_evaluator_agrees_with_python_arithmetic(expression):
    text, reference = expression
    try:
        expected = reference()
    except ZeroDivisionError:
        with pytest.raises(ExpressionError, match="division by zero"):
            evaluate_expression(text)
        return
    value = evaluate_expression(text)
    assert type(value) is type(expected)
    assert value == expected or (math.isnan(expected) and math.isnan(value))


DISALLOWED_SNIPPETS = [
    "x", "'a'", "[1]", "(1).real", "lambda: 1", "True", "1j", "f(1)", "__import__('os')", "[1][0]",
    "{1}", "1 if 1 else 2", "1 < 2", "not 1", "1 and 2", "~1", "1 << 2", "1 | 2", "1 ^ 2", "None",
    "abs(x=1)", "max(*[1])", "().__class__", "9 ** 999",
]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(EXPRESSIONS, st.sampled_from(DISALLOWED_SNIPPETS), st.booleans())
def test_evaluator_refuses_disallowed_constructs_anywhere(expression, snippet, on_the_left):
    text, _ = expression
    combined = f"({snippet}) + ({text})" if on_the_left else f"({text}) * ({snippet})"
    with pytest.raises(ExpressionError):
        evaluate_expression(combined)
