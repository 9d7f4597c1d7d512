"""Tokenizers compared on the same text: the seed's regex words, characters, UTF-8 bytes,
the base model's own tokenizer, and byte-level BPE tokenizers trained here.

Every tokenizer is wrapped as a *counter* (a list of texts -> a list of token counts), so
the study treats them alike; the trained and the base tokenizers count with the Rust
`encode_batch` (batched, parallel on the rule's threads), the others with plain Python.
"""

import re
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from lmlab.core.errors import InputError
from lmlab.core.io import atomic_write, read_jsonl, write_json

# The seed notebook's word tokenizer: runs of word characters, or one punctuation mark.
SEED_WORD_RE = re.compile(r"\w+|[^\w\s]")
# Special token of the trained tokenizers: document separator (and EOS of the tiny LMs).
BPE_SPECIAL = "<|endoftext|>"
QUANTILES = (0.1, 0.5, 0.9)


def seed_tokenize(text):
    """The seed notebook's tokenizer (`\\w+|[^\\w\\s]`), one call per text."""
    return SEED_WORD_RE.findall(text)


def words(text):
    """Whitespace words: the denominator of tokens-per-word (fertility)."""
    return len(text.split())


# ------------------------------------------------------------------ rows -> text


def example_text(row, kind):
    """All the text of one row, the way the study measures a dataset's size."""
    if kind == "sft":
        return "\n\n".join(p for p in (row["instruction"], row.get("input", ""), row["output"]) if p)
    if kind == "preferences":
        return "\n\n".join((row["prompt"], row["chosen"], row["rejected"]))
    if kind == "kb":
        return f"{row['title']}\n\n{row['text']}"
    if kind == "agent_tasks":
        return f"{row['question']}\n\n{row['answer']}"
    raise ValueError(f"unknown dataset kind {kind!r}")


def example_group(row, kind):
    """The task of a row: SFT/preference task, agent category, or 'kb'."""
    if kind in ("sft", "preferences"):
        return row["task"]
    if kind == "agent_tasks":
        return row["category"]
    return "kb"


def training_texts(rows):
    """Text the BPE tokenizers and the tiny LMs train on: one document per SFT row."""
    return [example_text(r, "sft") for r in rows]


# ------------------------------------------------------------------ BPE training


def train_bpe(texts, vocab_size, out_path, min_frequency=2):
    """Train a byte-level BPE (GPT-2 style pre-tokenisation) and save it as tokenizer.json.

    Returns {requested_vocab, vocab_size, merges}: on a small corpus the trainer stops
    before `vocab_size` when no pair occurs `min_frequency` times, and the real size is
    what the study reports.
    """
    if not texts:
        raise InputError("train_bpe: no training text")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=int(min_frequency),
        show_progress=False,
        special_tokens=[BPE_SPECIAL],
        # All 256 byte symbols from the start, so any UTF-8 text encodes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    text = tokenizer.to_str(pretty=True)
    with atomic_write(out_path) as handle:
        handle.write(text + "\n")
    return {
        "requested_vocab": int(vocab_size),
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
    }


def train_tokenizers(train_path, vocab_sizes, out_paths, info_path, min_frequency=2):
    """One byte-level BPE per vocabulary size on the SFT training text, saved at the
    matching `out_paths`; their `train_bpe` infos go to `info_path` as {"bpe-<size>": info}."""
    texts = training_texts(read_jsonl(train_path))
    info = {f"bpe-{size}": train_bpe(texts, size, path, min_frequency) for size, path in zip(vocab_sizes, out_paths)}
    write_json(info_path, info)
    return info


def load_backend(path):
    """A `tokenizers.Tokenizer` from a tokenizer.json file or a model folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.exists():
        raise InputError(f"{path}: file: no tokenizer.json")
    return Tokenizer.from_file(str(path))


def encode_batch(backend, texts):
    """Token ids of each text, no special tokens added (one Rust call, parallel)."""
    return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]


def make_counter(name, backend=None):
    """texts -> token counts, for a simple tokenizer name or a `tokenizers.Tokenizer`."""
    if name == "regex":
        return lambda texts: [len(SEED_WORD_RE.findall(t)) for t in texts]
    if name == "chars":
        return lambda texts: [len(t) for t in texts]
    if name == "bytes":
        return lambda texts: [len(t.encode("utf-8")) for t in texts]
    if backend is None:
        raise ValueError(f"tokenizer {name!r} needs a tokenizers backend")
    return lambda texts: [len(e) for e in encode_batch(backend, texts)]


# ------------------------------------------------------------------ statistics


def distribution(values):
    """{mean, p10, p50, p90, n} of a list of numbers (linear-interpolated quantiles)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {"mean": None, "p10": None, "p50": None, "p90": None, "n": 0}
    q = np.quantile(array, QUANTILES)
    return {
        "mean": float(array.mean()),
        "p10": float(q[0]),
        "p50": float(q[1]),
        "p90": float(q[2]),
        "n": int(array.size),
    }


def fertility_rows(examples, counts):
    """Per tokenizer x dataset x language x task: tokens per word and per byte.

    `examples`: [{dataset, lang, task, words, bytes}]; `counts`: {tokenizer: [tokens]}
    aligned with `examples`. Each group gets the corpus ratio (sum tokens / sum words) and
    the per-example distribution of the ratio (examples with zero words are skipped for
    tokens/word). Groups: every (dataset, lang, task), plus 'all' rows per dataset x lang
    and per dataset, and one over everything.
    """
    groups = {}
    for i, e in enumerate(examples):
        for dataset in (e["dataset"], "all"):
            for lang in (e["lang"], "all"):
                for task in (e["task"], "all"):
                    groups.setdefault((dataset, lang, task), []).append(i)
    rows = []
    for tok, toks in counts.items():
        toks = np.asarray(toks, dtype=float)
        for key in sorted(groups):
            dataset, lang, task = key
            if task != "all" and dataset == "all":
                continue  # tasks are named per dataset; 'all datasets x one task' mixes kinds
            idx = np.asarray(groups[key])
            w = np.asarray([examples[i]["words"] for i in idx], dtype=float)
            b = np.asarray([examples[i]["bytes"] for i in idx], dtype=float)
            t = toks[idx]
            per_word = distribution((t[w > 0] / w[w > 0]).tolist())
            per_byte = distribution((t[b > 0] / b[b > 0]).tolist())
            rows.append(
                {
                    "tokenizer": tok,
                    "dataset": dataset,
                    "lang": lang,
                    "task": task,
                    "examples": int(idx.size),
                    "tokens": int(t.sum()),
                    "words": int(w.sum()),
                    "bytes": int(b.sum()),
                    "tokens_per_word": float(t.sum() / w.sum()) if w.sum() else None,
                    "tokens_per_word_mean": per_word["mean"],
                    "tokens_per_word_p10": per_word["p10"],
                    "tokens_per_word_p50": per_word["p50"],
                    "tokens_per_word_p90": per_word["p90"],
                    "tokens_per_byte": float(t.sum() / b.sum()) if b.sum() else None,
                    "tokens_per_byte_mean": per_byte["mean"],
                    "tokens_per_byte_p10": per_byte["p10"],
                    "tokens_per_byte_p50": per_byte["p50"],
                    "tokens_per_byte_p90": per_byte["p90"],
                    "tokens_per_example_mean": float(t.mean()),
                }
            )
    return rows
