"""The one generation path (lmlab.models.generation.generate_batched) against plain
`model.generate`: same weights, same prompts, greedy; with the adapter merged into the weights
(how every stage loads a trained model) and as a separate PEFT branch."""

import pytest

import tiny_models

PROMPTS = [
    "What is 2 + 3?",
    "Name the colour of the sky and explain why it looks that way.",
    "Hi",
    "Return JSON with the name: Ana lives in Lima.",
    "Classify the sentiment: great product!",
    "One two three four five six seven",
]


def plain_generate(model, tokenizer, prompt, max_new_tokens):
    import torch

    encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "peft-branch"])
def test_batched_greedy_equals_plain_generate_one_prompt_at_a_time(tmp_path_factory, merge):
    from peft import PeftModel

    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import generate_batched

    base = tiny_models.tiny_base(tmp_path_factory)
    adapter = tiny_models.tiny_sft_adapter(tmp_path_factory, base)
    model = load_model(base, adapter, merge=merge)
    assert isinstance(model, PeftModel) != merge
    tokenizer = load_tokenizer(base)
    plain = [plain_generate(model, tokenizer, prompt, 12) for prompt in PROMPTS]
    assert len(set(plain)) > 1  # the prompts lead to different continuations
    for batch_size in (1, 4, 8):
        batched = generate_batched(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=batch_size,
                                   progress=False)
        assert [r["text"] for r in batched] == plain, batch_size
