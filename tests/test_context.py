"""Context study: truncation and window arithmetic, the retriever, the long-context
examples, and byte-identical statistics across two runs."""

import json
from pathlib import Path

import pytest

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, read_tsv
from lmlab.core.retrieval import bm25_scores
from lmlab.context.accuracy import stratified_sample
from lmlab.context.examples import DATASET_KINDS, long_context_doc
from lmlab.context.retriever import located_terms, retrieve_top1, terms, terms_between, window_passages
from lmlab.context.stats import context_stats
from lmlab.context.tokenizers import BPE_SPECIAL, load_backend, train_bpe, training_texts
from lmlab.context.windows import (
    char_span_to_tokens,
    span_survives,
    token_window_chars,
    truncation,
    window_cost,
    window_starts,
    windows_holding,
)

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ arithmetic


def test_truncation_keeps_the_beginning():
    t = truncation(10, 4)
    assert (t["kept"], t["lost"], t["truncated"]) == (4, 6, True)
    assert t["fraction_lost"] == pytest.approx(0.6)
    fits = truncation(4, 8)
    assert (fits["kept"], fits["lost"], fits["truncated"], fits["fraction_lost"]) == (4, 0, False, 0.0)
    exact = truncation(8, 8)
    assert exact["lost"] == 0 and not exact["truncated"]
    with pytest.raises(ValueError):
        truncation(5, 0)


def test_span_survives_only_before_the_cut():
    # An answer at token 7 is the span [7, 8).
    assert span_survives(8, 8)
    assert not span_survives(8, 6)
    assert not span_survives(8, 7)
    # A two-token answer [6, 8) needs both tokens: window 7 keeps only the first.
    assert not span_survives(8, 7) and span_survives(8, 9)


def test_sliding_windows_exact_counts():
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_cost(10, 4, 2) == {"windows": 4, "tokens_processed": 16, "overlap_tokens": 6}
    # 11 tokens: the regular starts leave token 10 uncovered, so a last window ends at 11.
    assert window_starts(11, 4, 2) == [0, 2, 4, 6, 7]
    assert window_cost(11, 4, 2) == {"windows": 5, "tokens_processed": 20, "overlap_tokens": 9}
    # No overlap when the stride equals the window.
    assert window_cost(12, 4, 4) == {"windows": 3, "tokens_processed": 12, "overlap_tokens": 0}
    # A short sequence is one (short) window.
    assert window_cost(3, 4, 2) == {"windows": 1, "tokens_processed": 3, "overlap_tokens": 0}
    with pytest.raises(ValueError):
        window_starts(10, 4, 5)


def test_windows_holding_a_span():
    starts = window_starts(10, 4, 2)  # [0,4) [2,6) [4,8) [6,10)
    assert windows_holding((7, 8), starts, 4) == [2, 3]
    assert windows_holding((1, 2), starts, 4) == [0]
    # A span across a boundary of every window holding one of its tokens: [3, 6) fits only [2,6).
    assert windows_holding((3, 6), starts, 4) == [1]
    assert windows_holding((1, 6), starts, 4) == []


def test_char_span_to_tokens_uses_offsets():
    text = "The answer is Paris, France."
    offsets = [(0, 3), (3, 10), (10, 13), (13, 19), (19, 20), (20, 27), (27, 28)]
    start = text.index("Paris")
    assert char_span_to_tokens(offsets, start, start + len("Paris")) == (3, 4)
    start = text.index("Paris, France")
    assert char_span_to_tokens(offsets, start, start + len("Paris, France")) == (3, 6)
    with pytest.raises(ValueError):
        char_span_to_tokens(offsets, 40, 45)
    # Characters of a token window, cut at the last token.
    assert token_window_chars(offsets, 3, 3) == (13, 27)
    assert token_window_chars(offsets, 5, 4) == (20, 28)


# ------------------------------------------------------------------ retriever

PASSAGES = [
    "The river floods the low fields every summer.",
    "The bakery on the main square opened in 1897.",
    "The secret ingredient of the famous flan is smoked paprika.",
    "Winters in the valley are mild but windy.",
]


def test_retriever_picks_the_window_with_the_answer():
    assert retrieve_top1("What is the secret ingredient of the famous flan?", PASSAGES) == 2
    assert retrieve_top1("When did the bakery open?", PASSAGES) == 1
    # Accent- and case-insensitive terms.
    assert retrieve_top1("PIMENTON", ["una tarta de queso", "el pimentón ahumado"]) == 1
    # Nothing matches: ties go to the first passage.
    assert retrieve_top1("zebra", PASSAGES) == 0


def test_retriever_scores_are_lucene_bm25():
    # Known scores (k1 = 1.2, b = 0.75, IDF log(1 + (N - n + 0.5) / (n + 0.5))), worked out by
    # the hand-written BM25 the study used before it scored through lmlab.core.retrieval.
    docs = [terms(p) for p in PASSAGES]
    known = {
        "What is the secret ingredient of the famous flan?": [
            0.2968987998409014,
            0.2874316990488089,
            7.103524359385726,
            0.2183784577564638,
        ],
        "When did the bakery open?": [0.1484493999204507, 1.333778826842724, 0.139274844732234, 0.1091892288782319],
        # A repeated query term counts twice.
        "the the river": [1.544622971215021, 0.2874316990488089, 0.278549689464468, 0.2183784577564638],
    }
    for query, scores in known.items():
        assert bm25_scores(terms(query), docs, k1=1.2, b=0.75, idf="lucene") == pytest.approx(scores, rel=1e-12)
    folded = [terms(p) for p in ["una tarta de queso", "el pimentón ahumado", "pimentón"]]
    got = bm25_scores(terms("PIMENTON ahumado"), folded, k1=1.2, b=0.75, idf="lucene")
    assert got == pytest.approx([0.0, 1.3802518231206125, 0.6314552576125915], rel=1e-12)


def test_retriever_ties_go_to_the_earliest_window():
    # Equal windows score equally: the first one wins, wherever the tie is.
    assert retrieve_top1("flan", ["flan tart", "bread", "flan tart"]) == 0
    assert retrieve_top1("flan", ["bread", "flan tart", "flan tart"]) == 1
    # Only empty windows: every score is 0 and the first window wins.
    assert retrieve_top1("flan", [[], []]) == 0
    # Term lists and texts give the same choice.
    assert retrieve_top1(terms("the bakery"), [terms(p) for p in PASSAGES]) == retrieve_top1("the bakery", PASSAGES)


def test_terms_between_takes_whole_words_by_character_range():
    text = "alpha beta gamma delta"
    located = located_terms(text)
    assert terms_between(located, 0, len(text)) == ["alpha", "beta", "gamma", "delta"]
    assert terms_between(located, 6, 16) == ["beta", "gamma"]
    # A word cut by the window edge is left out.
    assert terms_between(located, 7, 16) == ["gamma"]


def test_window_passages_are_the_terms_of_each_token_window():
    text = "Ayer fundó Núñez la panadería"
    offsets = [(0, 4), (4, 10), (10, 16), (16, 19), (19, 29)]
    located = located_terms(text)
    passages = window_passages(located, offsets, window_starts(5, 2, 2), 2)
    assert passages == [["ayer", "fundo"], ["nunez", "la"], ["la", "panaderia"]]


def test_stratified_sample_balances_depths():
    rows = [{"id": f"r{i:02d}", "meta": {"depth": d}} for i, d in enumerate([0.05] * 10 + [0.5] * 3 + [0.95] * 10)]
    picked = stratified_sample(rows, 9, [0.0, 1 / 3, 2 / 3, 1.0], seed=1)
    depths = sorted(r["meta"]["depth"] for r in picked)
    assert depths == [0.05] * 3 + [0.5] * 3 + [0.95] * 3
    assert [r["id"] for r in picked] == [r["id"] for r in stratified_sample(rows, 9, [0.0, 1 / 3, 2 / 3, 1.0], seed=1)]


def test_long_context_doc_checks_the_answer_offset():
    row = {"instruction": "Q?", "input": "abc Paris def", "meta": {"answer": "Paris", "answer_char_start": 4}}
    assert long_context_doc(row, "f:1")["end"] == 9
    row["meta"]["answer_char_start"] = 3
    with pytest.raises(InputError, match="answer_char_start"):
        long_context_doc(row, "f:1")


# ------------------------------------------------------------------ byte-identical statistics


def _slice(tmp_path, per_task=3):
    """A small slice of the committed raw data: a few rows per task of each file."""
    paths = {}
    for name in DATASET_KINDS:
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
    from transformers import PreTrainedTokenizerFast  # transformers is slow to import; only this test needs it

    train_bpe(texts, 500, tmp_path / "bpe-base" / "tokenizer.json")
    tok = PreTrainedTokenizerFast(tokenizer_object=load_backend(tmp_path / "bpe-base"), eos_token=BPE_SPECIAL)
    tok.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


@pytest.mark.skipif(not (ROOT / "data/raw/sft_train.jsonl").exists(), reason="needs the committed raw data")
def test_statistics_are_byte_identical_across_runs(tmp_path):
    paths = _slice(tmp_path)
    texts = training_texts(read_jsonl(paths["sft_train"]))
    base = _base_tokenizer(tmp_path, texts)
    outputs = []
    for run in ("run1", "run2"):
        bpe = tmp_path / run / "bpe-300" / "tokenizer.json"
        train_bpe(texts, 300, bpe)
        out = tmp_path / run / "stats"
        summary = context_stats(
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
