"""The one safe arithmetic evaluator: an AST walk over an allow-list, never eval.

Used by the agents' calculator tool on model-written text and by the data generator on
its own gold expressions, so a gold calculator call is evaluated exactly as the tool will.
The text is parsed with `ast.parse(mode="eval")` and only the allowed nodes are walked;
nothing is ever compiled to code. Bounds on length, depth, node count, exponents and
result size keep any one call cheap whatever the input.
"""

import ast
import math
import operator


class ExpressionError(ValueError):
    """A refused or failing expression (not allowed, malformed, out of bounds, division by
    zero, math domain); its message says why."""


# Bounds that keep one call cheap whatever the input. A 200-char expression cannot
# hold more than ~100 nodes; the depth bound stops deeply nested input before recursion.
MAX_EXPRESSION_CHARS = 200
MAX_AST_DEPTH = 30
MAX_AST_NODES = 100
MAX_EXPONENT = 100  # |b| in a ** b
MAX_RESULT_ABS = 10**100  # any intermediate or final value beyond this is refused
MAX_ROUND_DIGITS = 15

BINARY_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY_OPERATORS = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _checked_round(value, ndigits=None):
    # round(int, -10**9) would build 10**(10**9): bound ndigits and require an int.
    if ndigits is None:
        return round(value)
    if type(ndigits) is not int or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round: ndigits must be an integer with |ndigits| <= {MAX_ROUND_DIGITS}")
    return round(value, ndigits)


def _checked_log(value, base=None):
    if value <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ExpressionError("log: math domain error")
    return math.log(value) if base is None else math.log(value, base)


def _checked_sqrt(value):
    if value < 0:
        raise ExpressionError("sqrt: math domain error (negative argument)")
    return math.sqrt(value)


def _checked_exp(value):
    # exp(x) > 1e100 for x > 230; refuse before math raises OverflowError.
    if value > 230:
        raise ExpressionError("exp: result too large")
    return math.exp(value)


# name -> (function, min number of arguments, max number of arguments)
FUNCTIONS = {
    "sqrt": (_checked_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_checked_round, 1, 2),
    "min": (min, 2, 10),
    "max": (max, 2, 10),
    "log": (_checked_log, 1, 2),
    "exp": (_checked_exp, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}


def _check_number(value):
    # type() not isinstance(): bool is a subclass of int and must stay out.
    if type(value) not in (int, float):
        raise ExpressionError(f"result is not a real number ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("result is not finite")
    if abs(value) > MAX_RESULT_ABS:
        raise ExpressionError("result too large")
    return value


def _check_power(base, exponent):
    if abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(f"exponent too large (|exponent| <= {MAX_EXPONENT})")
    # Estimate the size before computing, so 99**99**... never builds a huge int.
    if base != 0 and abs(exponent) * math.log10(abs(base)) > 100:
        raise ExpressionError("result too large")
    if base == 0 and exponent < 0:
        raise ExpressionError("division by zero")


def _tree_shape(tree):
    """(depth, node count) of an AST, iteratively so hostile nesting cannot recurse."""
    max_depth, n_nodes = 0, 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        n_nodes += 1
        max_depth = max(max_depth, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return max_depth, n_nodes


def _evaluate_node(node):
    if isinstance(node, ast.Expression):
        return _evaluate_node(node.body)
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ExpressionError(f"only int and float literals are allowed, not {type(node.value).__name__}")
        return _check_number(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPERATORS:
        return _check_number(UNARY_OPERATORS[type(node.op)](_evaluate_node(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPERATORS:
        left, right = _evaluate_node(node.left), _evaluate_node(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            value = BINARY_OPERATORS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None
        except OverflowError:
            raise ExpressionError("result too large") from None
        return _check_number(value)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(f"only these functions are allowed, by bare name: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError("starred arguments are not allowed")
        function, min_args, max_args = FUNCTIONS[node.func.id]
        if not min_args <= len(node.args) <= max_args:
            raise ExpressionError(f"{node.func.id} takes {min_args} to {max_args} arguments")
        args = [_evaluate_node(arg) for arg in node.args]
        try:
            value = function(*args)
        except ExpressionError:
            raise  # a checked function's own refusal already names the function
        except (ValueError, OverflowError, ZeroDivisionError) as error:
            raise ExpressionError(f"{node.func.id}: {error}") from None
        return _check_number(value)
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")


def evaluate_expression(expression):
    """Value (int or float) of an arithmetic expression, or ExpressionError.

    Allowed: int/float literals, + - * / // % **, unary + -, parentheses, and
    sqrt abs round min max log exp floor ceil called by bare name with positional args."""
    if not isinstance(expression, str):
        raise ExpressionError("expression must be a string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    # Python's parser NFKC-normalises identifiers (fullwidth 'ｅval' is 'eval') and
    # int()/float() accept non-ASCII digits; requiring ASCII shuts both doors.
    if not expression.isascii():
        raise ExpressionError("expression must be ASCII (digits 0-9, operators, parentheses)")
    if not expression.strip():
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        raise ExpressionError(f"not a valid expression: {getattr(error, 'msg', error)}") from None
    depth, n_nodes = _tree_shape(tree)
    if depth > MAX_AST_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_AST_DEPTH}")
    if n_nodes > MAX_AST_NODES:
        raise ExpressionError(f"expression has more than {MAX_AST_NODES} parts")
    return _evaluate_node(tree)
