"""Batched fast tokenization vs the seed notebook's per-example loop, on the same input.

    .venv/bin/python benchmarks/bench_tokenize.py [--base results/embedded-cpu-default/models/base/smollm2-135m-instruct] [--n 10000]

The input is the first N example texts of the validated data (SFT splits, preferences, kb,
agent tasks, cycled to N). The seed tokenized one text per call in a Python loop; the study
makes one batched call (the Rust tokenizer then works on the texts in parallel). One run of
each, same texts, same tokenizer; prints both times and the ratio, and checks the counts match.
"""

import argparse
import os
import sys
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from lmlab.context.examples import DATASET_KINDS  # noqa: E402
from lmlab.core.io import read_jsonl  # noqa: E402
from lmlab.context.tokenizers import example_text  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=str(ROOT / "results/embedded-cpu-default/models/base/smollm2-135m-instruct"))
    parser.add_argument("--data", default=str(ROOT / "results/embedded-cpu-default/data"))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="TOKENIZERS_PARALLELISM on for > 1")
    args = parser.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if args.threads > 1 else "false"
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from lmlab.models.base import load_tokenizer

    texts = []
    for name, kind in DATASET_KINDS.items():
        path = Path(args.data) / f"{name}.jsonl"
        if not path.exists():
            path = ROOT / "data/raw" / f"{name}.jsonl"
        texts += [example_text(r, kind) for r in read_jsonl(path)]
    texts = list(islice(cycle(texts), args.n))
    tokenizer = load_tokenizer(args.base)
    tokenizer(texts[:8], add_special_tokens=False)  # warm-up: lazy init outside the timings

    start = time.perf_counter()
    loop_counts = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    loop_s = time.perf_counter() - start

    start = time.perf_counter()
    batched = tokenizer(texts, add_special_tokens=False)["input_ids"]
    batch_s = time.perf_counter() - start
    batch_counts = [len(ids) for ids in batched]

    if loop_counts != batch_counts:
        raise SystemExit("token counts differ between the loop and the batched call")
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"{len(texts)} texts, {n_bytes / 1e6:.1f} MB, {sum(batch_counts):,} tokens, tokenizer {args.base}")
    print(f"per-example loop : {loop_s:8.2f} s  {len(texts) / loop_s:10.0f} examples/s")
    print(f"batched call     : {batch_s:8.2f} s  {len(texts) / batch_s:10.0f} examples/s")
    print(f"ratio (loop / batched): {loop_s / batch_s:.2f}x")


if __name__ == "__main__":
    main()
