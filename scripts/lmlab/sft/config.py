"""The `sft` settings: defaults from config/schema.yaml and the checks the schema cannot express."""

from pathlib import Path

import yaml

from lmlab.core.errors import InputError

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


def default_config():
    """The `sft` defaults from config/schema.yaml (the one place they are written down)."""
    with open(SCHEMA, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    props = schema["properties"]["sft"]["properties"]
    return {key: spec.get("default") for key, spec in props.items()}


def resolve_config(cfg=None):
    """Defaults + `cfg`, with the cross-key checks the schema cannot express."""
    merged = default_config()
    unknown = set(cfg or {}) - set(merged)
    if unknown:
        raise InputError(f"config: sft: unknown keys {sorted(unknown)}")
    merged.update(cfg or {})
    if merged["load_best_model_at_end"] and merged["save_steps"] % merged["eval_steps"]:
        raise InputError(
            f"config: sft.save_steps: {merged['save_steps']} must be a multiple of sft.eval_steps "
            f"({merged['eval_steps']}) when load_best_model_at_end is true"
        )
    if merged["max_steps"] <= 0 and merged["num_train_epochs"] <= 0:
        raise InputError("config: sft: set max_steps > 0 or num_train_epochs > 0")
    names = [m["dataset"] for m in merged["mix"]]
    if len(set(names)) != len(names):
        raise InputError(f"config: sft.mix: a dataset is listed twice: {names}")
    return merged


def resolve_qlora(setting, cuda_available):
    """qlora: auto -> on with CUDA (the cluster default); true -> on, on any device (bitsandbytes
    0.50 has a CPU backend: slow, but the same 4-bit NF4 training); false -> off."""
    setting = str(setting).lower()
    if setting == "auto":
        return bool(cuda_available)
    if setting in ("true", "false"):
        return setting == "true"
    raise InputError(f"config: sft.qlora: {setting!r} is not one of auto, true, false")
