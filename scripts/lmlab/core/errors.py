"""The one error type for bad input: a single line `file:line: field: problem`."""


class InputError(ValueError):
    """Raised before any expensive work when an input file or the config is invalid."""


def input_error(path, line, field, problem):
    """Build the canonical one-line message; `line` may be None for whole-file problems."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return InputError(f"{where}: {field}: {problem}")
