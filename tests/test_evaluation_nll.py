"""Teacher-forced continuation NLL (the gold-answer NLL) on a tiny random Llama against a per-item reference loop; perplexity; token-budget batches."""

import math

import pytest

from lmlab.evaluation.stats import perplexity
from lmlab.models.generation import continuation_nll, token_budget_batches


class _CharTokenizer:
    """One token per character, ids 3..99; 0 pads. Enough tokenizer for continuation_nll."""

    pad_token_id = 0
    eos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [3 + ord(ch) % 97 for ch in text]}


@pytest.fixture(scope="module")
def tiny_llama():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    return transformers.LlamaForCausalLM(config)


def _loop_nll(model, tokenizer, prompt, gold):
    """Reference: one unpadded sequence at a time, log-softmax picked by hand."""
    import torch

    prompt_ids = tokenizer(prompt)["input_ids"]
    gold_ids = tokenizer(gold)["input_ids"]
    ids = torch.tensor([prompt_ids + gold_ids])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    total = 0.0
    for offset, token in enumerate(gold_ids):
        position = len(prompt_ids) + offset
        total -= float(log_probs[position - 1, token])
    return total / len(gold_ids)


PROMPTS = ["Question: 2+2? Answer:", "Hola", "A much longer prompt that pads the others:", "x"]
GOLDS = [" 4", " mundo feliz", " yes", "yz"]


def test_continuation_nll_matches_per_item_loop(tiny_llama):
    tokenizer = _CharTokenizer()
    tiny_llama.train()  # continuation_nll must switch dropout off and restore the mode
    batched = continuation_nll(tiny_llama, tokenizer, PROMPTS, GOLDS, batch_size=3)
    assert tiny_llama.training
    tiny_llama.eval()
    for result, prompt, gold in zip(batched, PROMPTS, GOLDS):
        assert result["tokens"] == len(gold)
        assert result["nll"] == pytest.approx(
            _loop_nll(tiny_llama, tokenizer, prompt, gold), abs=1e-5
        )
    one_by_one = continuation_nll(tiny_llama, tokenizer, PROMPTS, GOLDS, batch_size=1)
    for a, b in zip(batched, one_by_one):
        assert a["nll"] == pytest.approx(b["nll"], abs=1e-5)


def test_continuation_nll_max_length_truncates_prompt_from_the_left(tiny_llama):
    tokenizer = _CharTokenizer()
    prompt, gold = "abcdefghijklmnop", "xyz"
    result = continuation_nll(tiny_llama, tokenizer, [prompt], [gold], max_length=8)[0]
    assert result["nll"] == pytest.approx(
        _loop_nll(tiny_llama, tokenizer, prompt[-5:], gold), abs=1e-5
    )
    with pytest.raises(ValueError):
        continuation_nll(tiny_llama, tokenizer, [prompt], ["x" * 8], max_length=8)


def test_perplexity_is_token_weighted():
    rows = [{"gold_nll": 1.0, "gold_tokens": 1}, {"gold_nll": 2.0, "gold_tokens": 3}]
    assert perplexity(rows) == pytest.approx(math.exp((1.0 + 6.0) / 4))


def test_token_budget_batches_cap_items_and_padded_tokens():
    lengths = [10, 10, 10, 10, 300, 2000, 2100]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = token_budget_batches(order, lengths, batch_size=3, max_tokens=4096, max_padding=float("inf"))
    assert batches == [[0, 1, 2], [3, 4], [5], [6]]
    assert [i for b in batches for i in b] == order
    # With the padding bound the 300-token item no longer pads a 10-token one (600 > 1.5 x 310),
    # while 2000 and 2100 may share a batch (4200 <= 1.5 x 4100) when the token cap allows.
    assert token_budget_batches(order, lengths, batch_size=3, max_tokens=4096) == [[0, 1, 2], [3], [4], [5], [6]]
    assert token_budget_batches(order, lengths, batch_size=3, max_tokens=8192) == [[0, 1, 2], [3], [4], [5, 6]]
    # A single item longer than the budget still gets its own batch.
    assert token_budget_batches([0], [9000], batch_size=8) == [[0]]
