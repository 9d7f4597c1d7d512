"""Batched vs one-prompt-at-a-time generation on the same 64 prompts, in one run.

    .venv/bin/python benchmarks/bench_generate.py [--base results/models/base/<name>]
        [--items results/data/sft_test.jsonl] [--n 64] [--batch-size 16] [--max-new-tokens 32]

Both arms use lmlab.models.generation.generate_batched (greedy, KV cache, EOS stop); the
unbatched arm calls it with batch_size=1. Prompts are the first --n test items (all tasks
except long_context_qa, whose documents would dominate the timing) rendered with the chat
template. Prints seconds, generated tokens and tokens/s per arm, and the speed-up ratio.
"""

import argparse
import glob
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_base = next(iter(sorted(glob.glob(str(ROOT / "results/models/base/*")))), None)
    parser.add_argument("--base", default=default_base, help="base model folder (default: the one under results/)")
    parser.add_argument("--items", default=str(ROOT / "results/data/sft_test.jsonl"))
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--template", default="chat")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.base:
        parser.error("no base model: run `snakemake models_prepare` first or pass --base")

    import torch

    from lmlab.models.generation import generate_batched
    from lmlab.core.io import read_jsonl
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.core.seeding import seed_everything
    from lmlab.models.templates import render_prompt

    torch.set_num_threads(args.threads)
    seed_everything(0)
    tokenizer = load_tokenizer(args.base)
    model = load_model(args.base)
    rows = [r for r in read_jsonl(args.items) if r["task"] != "long_context_qa"][: args.n]
    prompts = [render_prompt(r, args.template, tokenizer) for r in rows]
    generate_batched(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, progress=False)  # warm-up

    results = {}
    for name, batch_size in (("batched", args.batch_size), ("one_at_a_time", 1)):
        start = time.perf_counter()
        out = generate_batched(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, batch_size=batch_size,
                               progress=False)
        seconds = time.perf_counter() - start
        tokens = sum(o["tokens_out"] for o in out)
        results[name] = {"seconds": seconds, "tokens_out": tokens, "tokens_per_s": tokens / seconds,
                         "texts": [o["text"] for o in out]}
        print(f"{name:>14}: {len(prompts)} prompts, batch {batch_size:>2}: {seconds:7.1f} s, "
              f"{tokens} tokens, {tokens / seconds:6.1f} tokens/s", flush=True)
    same = sum(a == b for a, b in zip(results["batched"]["texts"], results["one_at_a_time"]["texts"]))
    ratio = results["one_at_a_time"]["seconds"] / results["batched"]["seconds"]
    print(f"identical outputs: {same}/{len(prompts)} (padding can change greedy ties)")
    print(f"ratio one-at-a-time / batched: {ratio:.2f}x")
    print(json.dumps({"ratio": ratio, **{k: {kk: v for kk, v in r.items() if kk != "texts"}
                                          for k, r in results.items()}}, sort_keys=True))
    return ratio


if __name__ == "__main__":
    main()
