"""Config checking in one place, before any job runs: the JSON Schema (config/schema.yaml)
for keys, types and ranges, then the rules that tie one section to another. Each problem
is one line naming the key, e.g. `config: sft.mix: 'sft_test' is held out, not trainable`.
"""

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lmlab.core.errors import InputError

# The validated SFT files (rules/data.smk names them; the validation rule checks each).
SFT_DATASETS = ("sft_train", "sft_validation", "sft_test")
# The agents stage's paired comparisons (lmlab.agents.intervals.COMPARISONS; a test keeps the two equal).
AGENT_COMPARISONS = ("tools_vs_llm_only", "memory_vs_tools", "planning_vs_memory", "summary_vs_episodic_memory",
                     "heuristic_vs_llm_planning")


def check_config(config, schema_path, source="config"):
    """Raise InputError('config: key.path: problem') for the most relevant schema violation."""
    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise InputError(f"{source}: {where}: {error.message}")
    # A variant's keys are sft keys: each must pass the sft schema as the reference's do.
    sft_schema = schema["properties"]["sft"]
    for name, overrides in ((config.get("sft") or {}).get("variants") or {}).items():
        unknown = sorted(set(overrides) - set(sft_schema["properties"]) | ({"variants"} & set(overrides)))
        if unknown:
            raise InputError(f"{source}: sft.variants.{name}: {unknown} are not sft settings")
        error = best_match(Draft202012Validator(sft_schema).iter_errors(overrides))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path)
            raise InputError(f"{source}: sft.variants.{name}.{where}: {error.message}")


def trained_model_names(config):
    """Names of the models this config trains or loads (base, sft, its variants, the aligned policies)."""
    names = ["base"]
    if config["alignment"]["sft_template"] in config["templates"]:
        names.append("sft")
        names += [f"sft-{v}" for v in config["sft"]["variants"]]
    names += ["dpo", "orpo", *(f"rloo_{arm}" for arm in config["alignment"]["rloo"]["arms"])]
    return names


def check_rules(config):
    """Cross-section rules the schema cannot express; call after defaults are filled."""
    sft = config["sft"]
    # The reference settings and each variant's (its keys over the reference's) obey the same rules.
    for where, settings in [("sft", sft)] + [(f"sft.variants.{v}", {**sft, **o}) for v, o in sft["variants"].items()]:
        for role, name in [("validation", settings["validation"])] + [("mix", e["dataset"]) for e in settings["mix"]]:
            if name not in SFT_DATASETS:
                raise InputError(f"config: {where}.{role}: {name!r} is not one of {list(SFT_DATASETS)}")
            if role == "mix" and name in ("sft_test", settings["validation"]):
                raise InputError(f"config: {where}.mix: {name!r} is held out, not trainable")
    trained = [f"bpe-{v}" for v in config["context"]["bpe_vocab_sizes"]]
    for lm in config["context"]["bpb"]["tokenizers"]:
        if lm != "bytes" and lm not in trained:
            raise InputError(
                f"config: context.bpb.tokenizers: {lm!r} is not trained; "
                f"add its size to context.bpe_vocab_sizes ({trained})"
            )
    evaluation = config["evaluation"]
    for name in evaluation["models"]:
        if name.startswith("sft-") and name[4:] not in sft["variants"]:
            raise InputError(f"config: evaluation.models: {name!r} names no variant of sft.variants "
                             f"({sorted(sft['variants'])})")
    levels = {"model": evaluation["models"], "prompt": list(evaluation["prompts"]),
              "context": [int(c) for c in evaluation["contexts"]]}
    for i, hypothesis in enumerate(evaluation["primary"]):
        factor = hypothesis["factor"]
        for side in ("a", "b"):
            level = int(hypothesis[side]) if factor == "context" else hypothesis[side]
            if level not in levels[factor]:
                raise InputError(f"config: evaluation.primary[{i}].{side}: {hypothesis[side]!r} is not among the "
                                 f"evaluation's {factor} levels {levels[factor]}")
        if hypothesis["a"] == hypothesis["b"]:
            raise InputError(f"config: evaluation.primary[{i}]: a and b are the same level")
    for i, name in enumerate(config["agents"]["primary"]):
        model, comparison = name.split("/", 1)
        if model not in config["agents"]["models"] or comparison not in AGENT_COMPARISONS:
            raise InputError(f"config: agents.primary[{i}]: {name!r} is not model/comparison with a model of "
                             f"agents.models and one of {list(AGENT_COMPARISONS)}")
    available = trained_model_names(config)
    requested = [m for m in config["agents"]["models"] if m != "rloo"]
    if "rloo" in config["agents"]["models"]:
        requested += [m for m in available if m.startswith("rloo_")]
    if not any(m in available for m in requested):
        raise InputError(f"config: agents.models: no model can run (trained here: {', '.join(available)})")
