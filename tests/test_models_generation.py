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


# A few-shot transcript every prompt starts with, as the agent loop and judge prompts do.
SHARED = ("You answer with one word. Example: Question: colour of grass? Answer: green. "
          "Example: Question: opposite of hot? Answer: cold. Now the real question. Question: ")


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "peft-branch"])
def test_shared_prefix_cache_keeps_outputs_and_reads_the_prefix_once(tmp_path_factory, merge):
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import MIN_SHARED_PREFIX, generate_batched, prompt_tokens_computed

    base = tiny_models.tiny_base(tmp_path_factory)
    adapter = tiny_models.tiny_sft_adapter(tmp_path_factory, base)
    model = load_model(base, adapter, merge=merge)
    tokenizer = load_tokenizer(base)
    prompts = [SHARED + p for p in PROMPTS]
    plain = [plain_generate(model, tokenizer, prompt, 12) for prompt in prompts]
    assert len(set(plain)) > 1
    for batch_size in (1, 4, 8):
        cached = generate_batched(model, tokenizer, prompts, max_new_tokens=12, batch_size=batch_size, progress=False)
        assert [r["text"] for r in cached] == plain, batch_size
    prefix = cached[0]["prefix_tokens"]
    assert prefix >= MIN_SHARED_PREFIX
    uncached = generate_batched(model, tokenizer, prompts, max_new_tokens=12, batch_size=4, progress=False,
                                share_prefix=False)
    assert [r["text"] for r in uncached] == plain
    assert all(r["prefix_tokens"] == 0 for r in uncached)
    total = sum(r["tokens_in"] for r in cached)
    assert prompt_tokens_computed(uncached) == total
    assert prompt_tokens_computed(cached) == total - (len(prompts) - 1) * prefix


def test_token_budget_keeps_a_long_prompt_out_of_the_short_batch(tmp_path_factory):
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import generate_batched

    base = tiny_models.tiny_base(tmp_path_factory)
    model = load_model(base)
    tokenizer = load_tokenizer(base)
    prompts = PROMPTS + [" ".join(["word"] * 120)]
    plain = [plain_generate(model, tokenizer, prompt, 6) for prompt in prompts]
    budgeted = generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=8, max_batch_tokens=200,
                                progress=False)
    assert [r["text"] for r in budgeted] == plain
    # The long prompt ran alone: its batch latency is not shared with the short ones.
    assert budgeted[-1]["latency_s"] != budgeted[0]["latency_s"]


def test_prefix_store_serves_later_calls(tmp_path_factory):
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import generate_batched, prompt_tokens_computed

    base = tiny_models.tiny_base(tmp_path_factory)
    model = load_model(base)
    tokenizer = load_tokenizer(base)
    prompts = [SHARED + p for p in PROMPTS]
    plain = [plain_generate(model, tokenizer, prompt, 8) for prompt in prompts]
    store = {}
    first = generate_batched(model, tokenizer, prompts[:3], max_new_tokens=8, progress=False, prefix_store=store)
    assert len(store) == 1 and first[0]["prefix_computed"]
    # A later call, even of one prompt, reads the stored prefix instead of recomputing it.
    later = generate_batched(model, tokenizer, prompts[3:4], max_new_tokens=8, progress=False, prefix_store=store)
    assert not later[0]["prefix_computed"] and later[0]["prefix_tokens"] == first[0]["prefix_tokens"]
    assert prompt_tokens_computed(later) == later[0]["tokens_in"] - later[0]["prefix_tokens"]
    rest = generate_batched(model, tokenizer, prompts[4:], max_new_tokens=8, progress=False, prefix_store=store)
    assert [r["text"] for r in first + later + rest] == plain


def test_per_prompt_budgets_equal_one_call_per_budget(tmp_path_factory):
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import generate_batched

    base = tiny_models.tiny_base(tmp_path_factory)
    adapter = tiny_models.tiny_sft_adapter(tmp_path_factory, base)
    model = load_model(base, adapter)
    tokenizer = load_tokenizer(base)
    budgets = [2, 12, 5, 12, 1, 7]
    plain = [plain_generate(model, tokenizer, prompt, budget) for prompt, budget in zip(PROMPTS, budgets)]
    for batch_size in (2, 8):
        mixed = generate_batched(model, tokenizer, PROMPTS, max_new_tokens=budgets, batch_size=batch_size,
                                 progress=False)
        assert [r["text"] for r in mixed] == plain, batch_size
        assert all(r["tokens_out"] <= budget for r, budget in zip(mixed, budgets))
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_batched(model, tokenizer, PROMPTS, max_new_tokens=budgets[:2], progress=False)


GOLDS = ["5", "Blue, because air scatters short wavelengths.", "Hello there", '{"name": "Ana"}', "positive",
         "eight nine"]


@pytest.mark.parametrize("share_prefix", [False, True], ids=["own-prompts", "shared-prefix"])
def test_continuation_nll_on_the_generation_cache_equals_teacher_forced_scoring(tmp_path_factory, share_prefix):
    """The gold answers scored on the prompts' cache after decoding (one read of each prompt)
    equal continuation_nll's full forward pass over prompt + answer, with left-truncated
    prompts, a shared prefix and batches mixing prompt and answer lengths; the generated
    texts do not change."""
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import continuation_nll, generate_batched

    base = tiny_models.tiny_base(tmp_path_factory)
    adapter = tiny_models.tiny_sft_adapter(tmp_path_factory, base)
    model = load_model(base, adapter)
    tokenizer = load_tokenizer(base)
    prompts = [SHARED + p for p in PROMPTS] if share_prefix else PROMPTS
    limit = None if share_prefix else 8  # cuts the longer prompts from the left
    plain = generate_batched(model, tokenizer, prompts, max_new_tokens=[4, 9, 6, 12, 3, 7], batch_size=4,
                             max_input_tokens=limit, progress=False)
    scored = generate_batched(model, tokenizer, prompts, max_new_tokens=[4, 9, 6, 12, 3, 7], batch_size=4,
                              max_input_tokens=limit, progress=False, continuations=GOLDS)
    assert [r["text"] for r in scored] == [r["text"] for r in plain]
    assert any(r["truncated"] for r in scored) == (limit is not None)
    sent = []
    for p in prompts:
        ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        sent.append(tokenizer.decode(ids[-limit:] if limit else ids))
    reference = continuation_nll(model, tokenizer, sent, GOLDS, batch_size=1)
    for got, want in zip(scored, reference):
        assert got["continuation_tokens"] == want["tokens"]
        assert got["continuation_nll"] == pytest.approx(want["nll"], abs=1e-4)
    assert len({round(r["continuation_nll"], 3) for r in scored}) > 1
