"""Context study's tokenizers and bits per byte: BPE training is lossless and
deterministic, the seed tokenizer, and the bits-per-byte stream bookkeeping."""

import numpy as np

from lmlab.context.bpb import build_model, stream, stream_bytes, stream_nll
from lmlab.context.tokenizers import BPE_SPECIAL, load_backend, seed_tokenize, train_bpe


def test_seed_tokenizer_splits_punctuation():
    assert seed_tokenize("¿Qué tal, Ana?") == ["¿", "Qué", "tal", ",", "Ana", "?"]


def test_trained_bpe_is_lossless_and_deterministic(tmp_path):
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
