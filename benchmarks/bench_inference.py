"""Inference against the hardware, in one process on the same test items: one ratio per line.

    .venv/bin/python benchmarks/bench_inference.py [--run results/embedded-cpu-default]
        [--seed 1234] [--template chat] [--n 32] [--threads 1]

Reads a finished run (`make paper`): its base model, its reference SFT adapter and its test
items. Every arm goes through the stage code (lmlab.models.base.load_model,
lmlab.models.generation.generate_batched, lmlab.models.generation.continuation_nll); plain
`model.generate` is the reference the engine must equal.

(a) teacher-forced scoring of the gold answers, prompt and answer in one forward pass: achieved FLOP/s
    (2 x N_forward x non-padding tokens per second) over a float32 GEMM probe measured in the
    same process with the same threads;
(b) batched greedy generation vs plain `model.generate` one prompt at a time, with the share
    of identical outputs, and the bound these items put on it: the prompts' own forward
    passes (compute-bound, as fast one at a time as batched) against the plain time;
(c) one agent episode (SFT model, tools arm, the run's tasks and settings) with and without
    the shared-prefix cache: prompt tokens run through the model, speed, identical traces;
(d) merged vs unmerged adapter: generation speed ratio and the share of identical outputs;
(e) bfloat16 weights (this CPU has AVX-512 BF16) vs float32: speed and identical outputs,
    the measurement behind the engine's float32 on CPU.

A timing benchmark: run it on an idle machine; the ratios, not the seconds, are the result.
"""

import argparse
import glob
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def plain_generate(model, tokenizer, prompts, max_new_tokens):
    """The reference: `model.generate` on one unpadded prompt at a time."""
    import torch

    texts = []
    for prompt in prompts:
        encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                    temperature=None, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return texts


def plain_prefill(model, tokenizer, prompts):
    """The part of plain generation that batching cannot remove: one forward pass over each
    prompt, one at a time (prompt reading is compute-bound, decoding is not)."""
    import torch

    for prompt in prompts:
        encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            model(**encoded, use_cache=True)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "results" / "embedded-cpu-default"))
    parser.add_argument("--seed", default=None, help="training seed folder (default: the first seed-* of the run)")
    parser.add_argument("--template", default="chat")
    parser.add_argument("--n", type=int, default=32, help="test items (long-context items left out)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the default run: 1 per job)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    bases = sorted(glob.glob(str(run / "models" / "base" / "*")))
    seeds = [Path(args.seed)] if args.seed else sorted(run.glob("seed-*"))
    if not bases or not seeds:
        parser.error(f"{run}: no finished run (base model and seed folders); run `make paper` first")
    base, adapter = bases[0], seeds[0] / "models" / "sft" / args.template
    if not adapter.is_dir():
        parser.error(f"{adapter}: no SFT adapter for template {args.template!r}")

    import torch

    from lmlab.core.cost import forward_parameters, gemm_probe
    from lmlab.agents.loop import run_agent
    from lmlab.agents.run import make_generate
    from lmlab.agents.selection import select_tasks
    from lmlab.core.io import read_json, read_jsonl
    from lmlab.core.seeding import seed_everything
    from lmlab.core.timing import strip_timing
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.models.generation import continuation_nll, generate_batched
    from lmlab.models.templates import render_prompt

    torch.set_num_threads(args.threads)
    seed_everything(0)
    tokenizer = load_tokenizer(base)
    items = [r for r in read_jsonl(run / "evaluation" / "test_items.jsonl") if r["task"] != "long_context_qa"]
    items = items[: args.n]
    prompts = [render_prompt(row, args.template, tokenizer) for row in items]
    golds = [row["output"] for row in items]
    merged = load_model(base, adapter)
    print(f"# {len(items)} test items of {run.name}, adapter {adapter.relative_to(run)}, {args.threads} thread(s)")

    # (a) teacher-forced scoring over the probe, same process and threads.
    continuation_nll(merged, tokenizer, prompts[:2], golds[:2])  # warm-up
    _, scoring_s = timed(continuation_nll, merged, tokenizer, prompts, golds, batch_size=8)
    tokens = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) +
                 len(tokenizer(g, add_special_tokens=False)["input_ids"]) for p, g in zip(prompts, golds))
    n_forward, _ = forward_parameters(merged)
    probe = gemm_probe(seconds=2.0, n=1024)
    achieved = 2.0 * n_forward * tokens / scoring_s
    print(f"(a) scoring: {tokens} tokens in {scoring_s:.2f} s = {achieved / 1e9:.2f} GFLOP/s; "
          f"GEMM probe {probe['flops_per_s'] / 1e9:.2f} GFLOP/s; ratio {achieved / probe['flops_per_s']:.3f}")

    # (b) the engine, batched, vs plain generate one prompt at a time.
    generate_batched(merged, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, progress=False)  # warm-up
    batched, batched_s = timed(generate_batched, merged, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                               batch_size=args.batch_size, progress=False)
    plain, plain_s = timed(plain_generate, merged, tokenizer, prompts, args.max_new_tokens)
    same = sum(r["text"] == p for r, p in zip(batched, plain))
    _, prefill_s = timed(plain_prefill, merged, tokenizer, prompts)
    print(f"(b) batched generation: {plain_s / batched_s:.2f}x faster than plain generate one at a time "
          f"({batched_s:.1f} s vs {plain_s:.1f} s); identical outputs {same}/{len(prompts)}; reading the prompts "
          f"alone takes {prefill_s:.1f} s ({prefill_s / plain_s:.0%} of plain), so batching, which only shares "
          f"the decoding steps, is bounded near {plain_s / prefill_s:.2f}x on these items")

    # (c) one agent episode (SFT model, tools arm, the run's task subset) with and without
    # the shared-prefix cache: prompt tokens run through the model, and identical traces.
    settings = read_json(seeds[0] / "agents" / "sft" / "tools" / "metrics.json")["settings"]
    tasks, _ = select_tasks(read_jsonl(run / "data" / "agent_tasks.jsonl"), settings["max_tasks"],
                            settings["min_repeats"], settings["seed"])
    kb_rows = read_jsonl(run / "data" / "kb.jsonl")
    episodes = {}
    for share in (False, True):
        generate, counters = make_generate(merged, tokenizer, settings["max_new_tokens"], settings["batch_size"],
                                           settings["prompt_format"], settings["max_input_tokens"], share_prefix=share)
        traces, seconds = timed(run_agent, tasks, generate, "tools", kb_rows, max_steps=settings["max_steps"],
                                seed=settings["seed"], batch_size=settings["batch_size"])
        episodes[share] = (strip_timing(traces), counters, seconds)
    (plain_traces, plain_counts, plain_s), (cached_traces, cached_counts, cached_s) = episodes[False], episodes[True]
    print(f"(c) agent episode ({len(tasks)} tasks, {cached_counts['prompts']} turns): "
          f"{plain_counts['prompt_tokens_computed'] / cached_counts['prompt_tokens_computed']:.2f}x fewer prompt "
          f"tokens with prefix reuse ({plain_counts['prompt_tokens_computed']} vs "
          f"{cached_counts['prompt_tokens_computed']}); {plain_s / cached_s:.2f}x faster ({plain_s:.1f} s vs "
          f"{cached_s:.1f} s); identical traces {sum(a == b for a, b in zip(plain_traces, cached_traces))}/{len(tasks)}")

    # (d) merged vs the adapter as a separate PEFT branch, same prompts.
    unmerged = load_model(base, adapter, merge=False)
    generate_batched(unmerged, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, progress=False)
    branch, branch_s = timed(generate_batched, unmerged, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                             batch_size=args.batch_size, progress=False)
    agree = sum(a["text"] == b["text"] for a, b in zip(batched, branch))
    print(f"(d) merged adapter: {branch_s / batched_s:.2f}x faster than unmerged ({batched_s:.1f} s vs "
          f"{branch_s:.1f} s); identical outputs {agree}/{len(prompts)}")

    # (e) the dtype the engine keeps: bfloat16 weights on this CPU, batched as in (b).
    half = load_model(base, adapter, device="cpu", dtype=torch.bfloat16)
    generate_batched(half, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, progress=False)
    halved, half_s = timed(generate_batched, half, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                           batch_size=args.batch_size, progress=False)
    half_plain = plain_generate(half, tokenizer, prompts, args.max_new_tokens)
    print(f"(e) bfloat16 weights: {batched_s / half_s:.2f}x the float32 speed ({half_s:.1f} s vs {batched_s:.1f} s); "
          f"outputs identical to float32 {sum(a['text'] == b['text'] for a, b in zip(batched, halved))}/{len(prompts)}; "
          f"batched equal to plain generate in bfloat16 {sum(a['text'] == b for a, b in zip(halved, half_plain))}"
          f"/{len(prompts)}")


if __name__ == "__main__":
    main()
