"""What a training run cost: tokens/s, peak memory, wall time, and achieved vs measured FLOP/s.

The achieved FLOP/s uses the usual dense-transformer estimate

    FLOPs = 6 * N_forward * tokens

with N_forward = the parameters that take part in a matrix multiply in the forward pass (every
weight except the input-embedding lookup; a tied LM head is counted once, as the LM head) and
`tokens` = the non-padding training tokens actually processed (sum of the attention masks).
That 6N counts a backward pass that computes weight gradients for every parameter. LoRA
(and QLoRA) freeze the base: the backward pass still propagates activation gradients through
every layer (about 2N per token) but computes weight gradients only for the adapter (2 *
N_trainable), so a trained token costs (4 * N_forward + 2 * N_trainable): that is the headline
for every training rule here (all of them train adapters); 6N is kept beside it for
comparison with dense fine-tuning figures.

The alignment trainers also run forward passes without a backward pass: DPO's reference
log-probabilities (the adapter disabled), RLOO's sampled completions and old log-probs.
`count_forward_tokens` counts, on the policy's decoder, the non-padding tokens of every
forward pass during training, split by whether autograd records it; a forward-only token
costs 2 * N_forward. The reward model RLOO calls is another network and is not counted.

The machine's peak is *measured*, not looked up: a short GEMM probe (square float32 matmuls on
the training device, in the same process and thread setting) gives the FLOP/s that this
hardware actually reaches on the best case for it, and the ratio achieved / probe is the
utilisation a reader can compare across machines.
"""

import resource
import sys
import time

import torch

FLOPS_FORMULA = (
    "6 * N_forward * tokens (N_forward: parameters used in forward matmuls; tokens: non-padding training tokens)"
)
LORA_FLOPS_FORMULA = "(4 * N_forward + 2 * N_trainable) * tokens"
TRAINING_FLOPS_FORMULA = (
    "(4 * N_forward + 2 * N_trainable) * trained tokens + 2 * N_forward * forward-only tokens "
    "(LoRA: no weight gradients for the frozen base; tokens counted on the policy's forward passes)"
)


def count_forward_tokens(model):
    """Count the tokens every forward pass of `model`'s decoder processes, until the returned
    handle's remove(): {"trained": tokens of passes autograd records (a backward follows),
    "forward_only": tokens of passes under no_grad (reference log-probs, sampling, evaluation)}.

    A pass counts its non-padding positions: the last input_length columns of a 2-D attention
    mask (a decoding step with a KV cache feeds one new token per row), else every position."""
    counts = {"trained": 0, "forward_only": 0}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(base, getattr(base, "base_model_prefix", ""), None) or base

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        shape = ids.shape if ids is not None else embeds.shape[:2] if embeds is not None else None
        if shape is None:
            return
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.dim() == 2:
            n = int(mask[:, -shape[-1]:].sum())
        else:
            n = int(shape[0] * shape[-1]) if len(shape) > 1 else int(shape[0])
        counts["trained" if torch.is_grad_enabled() else "forward_only"] += n

    return counts, decoder.register_forward_pre_hook(hook, with_kwargs=True)


def training_flops(counts, n_forward, n_trainable):
    """TRAINING_FLOPS_FORMULA over count_forward_tokens' counts."""
    return (4.0 * n_forward + 2.0 * n_trainable) * counts["trained"] + 2.0 * n_forward * counts["forward_only"]


def gemm_probe(seconds=1.0, n=1024, device="cpu", dtype=None):
    """Measured matmul FLOP/s: repeated n x n @ n x n products for about `seconds`.

    Returns {"flops_per_s", "n", "dtype", "device", "matmuls", "seconds"}.
    """
    dtype = dtype or torch.float32
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)

    def sync():
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        # Warm-up: first calls pay for allocation and kernel selection.
        for _ in range(2):
            c = a @ b
        sync()
        count, start = 0, time.perf_counter()
        while True:
            c = a @ b
            count += 1
            if count % 4 == 0:
                sync()
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
    del c
    return {
        "flops_per_s": 2.0 * n**3 * count / elapsed,
        "n": n,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "matmuls": count,
        "seconds": elapsed,
    }


def peak_memory_bytes(device="cpu"):
    """Peak memory of this process: device memory on CUDA, resident set size on CPU."""
    if str(device).startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def forward_parameters(model):
    """(N_forward, N_trainable): see the module docstring for what counts."""
    base = model
    if hasattr(base, "get_base_model"):
        base = base.get_base_model()
    embed = base.get_input_embeddings() if hasattr(base, "get_input_embeddings") else None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    embed_ids = {id(p) for p in embed.parameters()} if embed is not None else set()
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    n_forward = n_trainable = 0
    seen = set()
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        numel = param.numel()
        # 4-bit weights are packed two per byte: count the logical parameters.
        if getattr(param, "quant_state", None) is not None or param.dtype == torch.uint8:
            numel *= 2
        if param.requires_grad:
            n_trainable += numel
        if id(param) in embed_ids and id(param) not in head_ids:
            continue
        # The embedding lookup is not a matmul; a tied LM head (same tensor) is, so it stays.
        n_forward += numel
    return n_forward, n_trainable


def cost_record(tokens, train_step_s, wall_s, n_forward, n_trainable, probe, device, extra=None):
    """The cost.json content; every rate is derived from the raw numbers it also records."""
    tokens_per_s = tokens / train_step_s if train_step_s > 0 else 0.0
    achieved = 6.0 * n_forward * tokens_per_s
    # SFT has no forward-only passes: every counted token is trained.
    achieved_lora = training_flops({"trained": tokens_per_s, "forward_only": 0}, n_forward, n_trainable)
    peak = probe["flops_per_s"]
    record = {
        "tokens": int(tokens),
        "train_step_s": train_step_s,
        "wall_s": wall_s,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_wall": tokens / wall_s if wall_s > 0 else 0.0,
        "peak_memory_bytes": peak_memory_bytes(device),
        "peak_memory_kind": "cuda.max_memory_allocated" if str(device).startswith("cuda") else "getrusage.ru_maxrss",
        "n_forward_params": int(n_forward),
        "n_trainable_params": int(n_trainable),
        # Headline: the LoRA count (see the module docstring); the dense 6N figure beside it.
        "flops_formula": LORA_FLOPS_FORMULA,
        "achieved_flops_per_s": achieved_lora,
        "dense_flops_formula": FLOPS_FORMULA,
        "achieved_flops_per_s_dense": achieved,
        "probe": probe,
        "probe_flops_per_s": peak,
        "achieved_over_probe": achieved_lora / peak if peak > 0 else 0.0,
        "achieved_dense_over_probe": achieved / peak if peak > 0 else 0.0,
        "device": str(device),
    }
    record.update(extra or {})
    return record
