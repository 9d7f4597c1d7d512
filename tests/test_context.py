"""Context study: truncation and window arithmetic, the retriever, BPE training, bits per
byte bookkeeping, and byte-identical statistics across two runs."""

import json
from pathlib import Path

import pytest

from lmlab.context import study as ctx
from lmlab.context.tokenizers import BPE_SPECIAL, seed_tokenize, train_bpe

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ arithmetic


def test_truncation_keeps_the_beginning():
    t = ctx.truncation(10, 4)
    assert (t["kept"], t["lost"], t["truncated"]) == (4, 6, True)
    assert t["fraction_lost"] == pytest.approx(0.6)
    fits = ctx.truncation(4, 8)
    assert (fits["kept"], fits["lost"], fits["truncated"], fits["fraction_lost"]) == (4, 0, False, 0.0)
    exact = ctx.truncation(8, 8)
    assert exact["lost"] == 0 and not exact["truncated"]
    with pytest.raises(ValueError):
        ctx.truncation(5, 0)


def test_span_survives_only_before_the_cut():
    # An answer at token 7 is the span [7, 8).
    assert ctx.span_survives(8, 8)
    assert not ctx.span_survives(8, 6)
    assert not ctx.span_survives(8, 7)
    # A two-token answer [6, 8) needs both tokens: window 7 keeps only the first.
    assert not ctx.span_survives(8, 7) and ctx.span_survives(8, 9)


def test_sliding_windows_exact_counts():
    assert ctx.window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert ctx.window_cost(10, 4, 2) == {"windows": 4, "tokens_processed": 16, "overlap_tokens": 6}
    # 11 tokens: the regular starts leave token 10 uncovered, so a last window ends at 11.
    assert ctx.window_starts(11, 4, 2) == [0, 2, 4, 6, 7]
    assert ctx.window_cost(11, 4, 2) == {"windows": 5, "tokens_processed": 20, "overlap_tokens": 9}
    # No overlap when the stride equals the window.
    assert ctx.window_cost(12, 4, 4) == {"windows": 3, "tokens_processed": 12, "overlap_tokens": 0}
    # A short sequence is one (short) window.
    assert ctx.window_cost(3, 4, 2) == {"windows": 1, "tokens_processed": 3, "overlap_tokens": 0}
    with pytest.raises(ValueError):
        ctx.window_starts(10, 4, 5)


def test_windows_holding_a_span():
    starts = ctx.window_starts(10, 4, 2)  # [0,4) [2,6) [4,8) [6,10)
    assert ctx.windows_holding((7, 8), starts, 4) == [2, 3]
    assert ctx.windows_holding((1, 2), starts, 4) == [0]
    # A span across a boundary of every window holding one of its tokens: [3, 6) fits only [2,6).
    assert ctx.windows_holding((3, 6), starts, 4) == [1]
    assert ctx.windows_holding((1, 6), starts, 4) == []


def test_char_span_to_tokens_uses_offsets():
    text = "The answer is Paris, France."
    offsets = [(0, 3), (3, 10), (10, 13), (13, 19), (19, 20), (20, 27), (27, 28)]
    start = text.index("Paris")
    assert ctx.char_span_to_tokens(offsets, start, start + len("Paris")) == (3, 4)
    start = text.index("Paris, France")
    assert ctx.char_span_to_tokens(offsets, start, start + len("Paris, France")) == (3, 6)
    with pytest.raises(ValueError):
        ctx.char_span_to_tokens(offsets, 40, 45)


def test_seed_tokenizer_splits_punctuation():
    assert seed_tokenize("¿Qué tal, Ana?") == ["¿", "Qué", "tal", ",", "Ana", "?"]


# ------------------------------------------------------------------ retriever


def test_retriever_picks_the_window_with_the_answer():
    passages = [
        "The river floods the low fields every summer.",
        "The bakery on the main square opened in 1897.",
        "The secret ingredient of the famous flan is smoked paprika.",
        "Winters in the valley are mild but windy.",
    ]
    assert ctx.retrieve_top1("What is the secret ingredient of the famous flan?", passages) == 2
    assert ctx.retrieve_top1("When did the bakery open?", passages) == 1
    # Accent- and case-insensitive terms.
    assert ctx.retrieve_top1("PIMENTON", ["una tarta de queso", "el pimentón ahumado"]) == 1
    # Nothing matches: ties go to the first passage.
    assert ctx.retrieve_top1("zebra", passages) == 0


def test_terms_between_takes_whole_words_by_character_range():
    text = "alpha beta gamma delta"
    located = ctx.located_terms(text)
    assert ctx.terms_between(located, 0, len(text)) == ["alpha", "beta", "gamma", "delta"]
    assert ctx.terms_between(located, 6, 16) == ["beta", "gamma"]
    # A word cut by the window edge is left out.
    assert ctx.terms_between(located, 7, 16) == ["gamma"]


def test_stratified_sample_balances_depths():
    rows = [{"id": f"r{i:02d}", "meta": {"depth": d}} for i, d in enumerate([0.05] * 10 + [0.5] * 3 + [0.95] * 10)]
    picked = ctx.stratified_sample(rows, 9, [0.0, 1 / 3, 2 / 3, 1.0], seed=1)
    depths = sorted(r["meta"]["depth"] for r in picked)
    assert depths == [0.05] * 3 + [0.5] * 3 + [0.95] * 3
    assert [r["id"] for r in picked] == [
        r["id"] for r in ctx.stratified_sample(rows, 9, [0.0, 1 / 3, 2 / 3, 1.0], seed=1)
    ]


def test_long_context_doc_checks_the_answer_offset():
    row = {"instruction": "Q?", "input": "abc Paris def", "meta": {"answer": "Paris", "answer_char_start": 4}}
    assert ctx.long_context_doc(row, "f:1")["end"] == 9
    row["meta"]["answer_char_start"] = 3
    with pytest.raises(ctx.InputError, match="answer_char_start"):
        ctx.long_context_doc(row, "f:1")


# ------------------------------------------------------------------ tokenizers and bits per byte


def test_trained_bpe_is_lossless_and_deterministic(tmp_path):
    from lmlab.context.tokenizers import load_backend

    texts = ["Hola, ¿qué tal? Señor Núñez llegó a las 10.", "The quick brown fox jumps over the lazy dog."] * 20
    a = train_bpe(texts, 300, tmp_path / "a" / "tokenizer.json")
    train_bpe(texts, 300, tmp_path / "b" / "tokenizer.json")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    assert a["vocab_size"] <= 300
    backend = load_backend(tmp_path / "a")
    for text in texts[:2] + ["日本語 emoji 🙂 unseen"]:
        assert backend.decode(backend.encode(text, add_special_tokens=False).ids) == text
    assert backend.token_to_id(BPE_SPECIAL) is not None


def test_stream_nll_scores_every_token_once():
    import numpy as np

    from lmlab.context.bpb import build_model, stream, stream_bytes, stream_nll

    texts = ["ab", "cde", "é"]
    encode = lambda ts: [list(t.encode("utf-8")) for t in ts]  # noqa: E731
    ids = stream(encode, 256, texts)
    assert ids.tolist() == [256, 97, 98, 256, 99, 100, 101, 256, 195, 169]
    # Scored: every token after the first SEP = all document bytes + the 2 later SEPs.
    assert stream_bytes(texts) == len(ids) - 1 == 9
    model = build_model(257, 8, 1, 2, 4, seed=0)
    for block in (4, 5, 16):
        nll, count = stream_nll(model, ids, block)
        assert count == len(ids) - 1 and np.isfinite(nll) and nll > 0


# ------------------------------------------------------------------ byte-identical statistics


def _slice(tmp_path, per_task=3):
    """A small slice of the committed raw data: a few rows per task of each file."""
    paths = {}
    for name in ctx.DATASET_KINDS:
        rows = [
            json.loads(line) for line in (ROOT / "data/raw" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        seen, keep = {}, []
        for row in rows:
            key = row.get("task") or row.get("category") or "kb"
            if seen.get(key, 0) < per_task:
                seen[key] = seen.get(key, 0) + 1
                keep.append(row)
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
        paths[name] = str(path)
    return paths


def _base_tokenizer(tmp_path, texts):
    """A stand-in base tokenizer (no hub): a small BPE wrapped as a transformers tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from lmlab.context.tokenizers import load_backend

    train_bpe(texts, 500, tmp_path / "bpe-base" / "tokenizer.json")
    tok = PreTrainedTokenizerFast(tokenizer_object=load_backend(tmp_path / "bpe-base"), eos_token=BPE_SPECIAL)
    tok.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


@pytest.mark.skipif(not (ROOT / "data/raw/sft_train.jsonl").exists(), reason="needs the committed raw data")
def test_statistics_are_byte_identical_across_runs(tmp_path):
    from lmlab.core.io import read_jsonl, read_tsv
    from lmlab.context.tokenizers import training_texts

    paths = _slice(tmp_path)
    texts = training_texts(read_jsonl(paths["sft_train"]))
    base = _base_tokenizer(tmp_path, texts)
    outputs = []
    for run in ("run1", "run2"):
        bpe = tmp_path / run / "bpe-300" / "tokenizer.json"
        train_bpe(texts, 300, bpe)
        out = tmp_path / run / "stats"
        summary = ctx.context_stats(
            paths,
            base,
            {"bpe-300": bpe},
            out,
            ["seed", "minimal"],
            "minimal",
            [32, 64, 128, 1024],
            timing_path=tmp_path / run / "timing.json",
        )
        outputs.append(out)
    files = sorted(p.name for p in outputs[0].iterdir())
    assert files == ["examples.tsv", "stats.json", "templates.tsv", "truncation.tsv", "windows.tsv"]
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    # The slice exercises every part: long-context documents, sentiment classes, bias tests.
    assert summary["counts"]["long_context_docs"] > 0
    assert {t["factor"] for t in summary["truncation_bias"]} == {"task", "sentiment_label"}
    # Totals are consistent: prompt + response = total, and per-window kept tokens never exceed W.
    for row in read_tsv(outputs[0] / "templates.tsv"):
        assert int(row["prompt_tokens"]) + int(row["response_tokens"]) == int(row["total_tokens"])
    for row in read_tsv(outputs[0] / "truncation.tsv"):
        assert int(row["tokens"]) - int(row["lost"]) <= int(row["window"])
