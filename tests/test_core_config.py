"""The config is checked against config/schema.yaml with one-line errors."""

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT

from lmlab.agents.intervals import COMPARISONS
from lmlab.core.config import AGENT_COMPARISONS, check_config, check_rules
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


def filled(name):
    """The config as the Snakefile sees it: schema defaults filled in by Snakemake's validate()."""
    config = load(name)
    validate(config, str(SCHEMA), set_default=True)
    return config


@pytest.mark.parametrize(
    "section, value, message",
    [
        ("evaluation", [{"factor": "model", "a": "sft", "b": "gpt"}],
         r"^config: evaluation\.primary\[0\]\.b: 'gpt' is not among the evaluation's model levels"),
        ("evaluation", [{"factor": "context", "a": 2048, "b": 2048}], r"^config: evaluation\.primary\[0\]: a and b"),
        ("agents", ["sft/tools_vs_nothing"], r"^config: agents\.primary\[0\]: 'sft/tools_vs_nothing' is not"),
        ("agents", ["dpo/tools_vs_llm_only"], r"^config: agents\.primary\[0\]: 'dpo/tools_vs_llm_only' is not"),
    ],
)
def test_a_primary_hypothesis_must_name_what_the_run_compares(section, value, message):
    config = filled("config.yaml")
    check_rules(config)  # the shipped primary hypotheses pass
    config[section]["primary"] = value
    with pytest.raises(InputError, match=message):
        check_rules(config)


def test_the_config_checker_knows_every_agent_comparison():
    assert AGENT_COMPARISONS == tuple(name for name, *_ in COMPARISONS)


@pytest.mark.parametrize(
    "variants, message",
    [
        ({"big": {"rank": 8}}, r"^config: sft\.variants\.big: \['rank'\] are not sft settings$"),
        ({"big": {"r": "eight"}}, r"^config: sft\.variants\.big\.r: 'eight' is not of type 'integer'$"),
        ({"two-words": {"r": 8}}, r"^config: sft\.variants: 'two-words' does not match"),
    ],
)
def test_an_sft_variant_is_checked_like_the_sft_settings(variants, message):
    config = load("config.yaml")
    check_config(config, SCHEMA)  # the shipped QLoRA variant passes
    config["sft"]["variants"] = variants
    with pytest.raises(InputError, match=message):
        check_config(config, SCHEMA)


def test_an_evaluated_variant_must_be_configured():
    config = filled("config.yaml")
    config["evaluation"]["models"] = [*config["evaluation"]["models"], "sft-r64"]
    with pytest.raises(InputError, match=r"^config: evaluation\.models: 'sft-r64' names no variant"):
        check_rules(config)
