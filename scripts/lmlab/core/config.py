"""Config checking: one line per problem, before any job runs."""

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lmlab.core.errors import InputError


def check_config(config, schema_path, source="config"):
    """Raise InputError('config: key.path: problem') for the most relevant schema violation."""
    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise InputError(f"{source}: {where}: {error.message}")
