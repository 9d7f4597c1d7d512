"""The config is checked against config/schema.yaml with one-line errors."""

import pytest
import yaml

from conftest import ROOT
from lmlab.core.config import check_config
from lmlab.core.errors import InputError

SCHEMA = ROOT / "config" / "schema.yaml"


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "hpc.yaml"])
def test_shipped_configs_are_valid(name):
    if not (ROOT / "config" / name).exists():
        pytest.skip(f"{name} not present")
    check_config(load(name), SCHEMA)


def test_unknown_key_is_one_line_error():
    config = load("config.yaml")
    config["sedd"] = 3
    with pytest.raises(InputError) as info:
        check_config(config, SCHEMA)
    assert "\n" not in str(info.value) and "sedd" in str(info.value)


def test_wrong_type_names_the_key():
    config = load("config.yaml")
    config["seed"] = "twelve"
    with pytest.raises(InputError, match=r"^config: seed: 'twelve' is not of type 'integer'$"):
        check_config(config, SCHEMA)


def test_nested_wrong_type_names_the_path():
    config = load("config.yaml")
    config["templates"] = ["seed", "haiku"]
    with pytest.raises(InputError, match=r"^config: templates\.1: 'haiku' is not one of"):
        check_config(config, SCHEMA)
