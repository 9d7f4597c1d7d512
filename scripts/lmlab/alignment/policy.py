"""What DPO, ORPO and RLOO share: the start point, the reference check and the pair data.

Every policy starts from the same point: the base model with the SFT adapter loaded as a
*trainable* PEFT adapter (`PeftModel.from_pretrained(base, sft, is_trainable=True)`), so
training continues the SFT LoRA and the result is again one LoRA adapter on the base,
loadable with `lmlab.models.base.load_model(BASE, adapter_dir)`.

The reference model of DPO and of RLOO's KL term must be the SFT model, not the base. TRL
1.16 does this itself for a PeftModel that already carries an adapter: it adds a frozen
copy of it under the name "ref" and computes reference log-probs with that adapter active
(`DPOTrainer.__init__` / `RLOOTrainer.__init__`, "ref" adapter; `use_adapter(model, "ref")`
in the loss). Disabling the adapter would give the *base* model, which is not the
reference we want. We keep TRL's mechanism and check it (`check_reference`: the largest
difference between the "ref" adapter's weights and the SFT adapter's after training, which
must be 0, is recorded in the card). ORPO has no reference model.

Same protocol for every method: same seed, same training prompts (DPO/ORPO: the pairs file;
RLOO: `lmlab.alignment.pairs.select_prompts` over sft_train), same steps, learning rate and
scheduler (config `alignment.train`), same max length. Checkpoints, resume and the output
folder are the trainer core's (`lmlab.training`).
"""

import json
from pathlib import Path

from datasets import Dataset
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lmlab.core.io import read_jsonl
from lmlab.training.outputs import count_by

# A pair is trained on only if at least this many response tokens fit after its prompt.
MIN_COMPLETION_TOKENS = 8


def load_policy(base_dir, sft_dir, device, dtype):
    """Base + SFT adapter as a trainable PEFT model (adapter name "default")."""
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    model = PeftModel.from_pretrained(model, sft_dir, is_trainable=True)
    return model.to(device)


def require_reference(trainer, name):
    """TRL must have added the frozen "ref" copy of the SFT adapter."""
    if "ref" not in trainer.model.peft_config:
        raise RuntimeError(f"{name} did not add the frozen 'ref' copy of the SFT adapter")


def max_ref_drift(model, sft_dir):
    """Largest |w_ref - w_sft| over the "ref" adapter's LoRA weights (None without a ref adapter).

    Saved keys look like `...q_proj.lora_A.weight`; the live parameter of adapter "ref" is
    `...q_proj.lora_A.ref.weight`."""
    if "ref" not in model.peft_config:
        return None
    state = load_file(str(Path(sft_dir) / "adapter_model.safetensors"))
    drift, compared = 0.0, 0
    for name, param in model.named_parameters():
        if ".ref." not in name:
            continue
        key = name.replace(".ref.", ".")
        if key in state:
            drift = max(drift, float((param.detach().cpu().float() - state[key].float()).abs().max()))
            compared += 1
    if compared == 0:
        raise RuntimeError("could not match any 'ref' adapter weight to the SFT adapter's weights")
    return drift


def check_reference(model, sft_dir, method):
    """The reference after training is still exactly the SFT adapter; returns the drift (0.0)."""
    drift = max_ref_drift(model, sft_dir)
    if drift is None or drift > 0:
        raise RuntimeError(f"the {method} reference moved away from the SFT adapter (max |diff| = {drift})")
    return drift


def pairs_dataset(pairs_path, tokenizer, max_length):
    """(dataset, rows, dropped): the training pairs whose prompt leaves room for a response.

    ORPO in TRL 1.16 keeps an over-long prompt whole and empties the response, which makes its
    loss NaN; DPO drops such pairs itself. Both get the same pairs here.
    """
    rows, dropped = [], 0
    for r in read_jsonl(pairs_path):
        if len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]) > max_length - MIN_COMPLETION_TOKENS:
            dropped += 1
            continue
        rows.append(r)
    if not rows:
        raise ValueError(f"{pairs_path}: every pair's prompt is longer than max_length {max_length} allows")
    dataset = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    return dataset, rows, dropped


def pairs_cost(train, world_size, n_train, dropped):
    """The pair-count part of a DPO or ORPO cost record."""
    seen = train["steps"] * train["batch_size"] * train.get("grad_accum", 1) * world_size
    return {"pairs_seen": seen, "train_pairs": n_train, "pairs_left_out": dropped}


def pairs_section(pairs_path, rows, dropped, max_length, pairs_summary):
    """The card's Data section of a pair-trained policy."""
    return (
        "Data",
        [
            f"- training pairs: {len(rows)} from `{pairs_path}`; per source: {json.dumps(count_by(rows, 'source'))}; "
            f"{dropped} left out (prompt leaves < {MIN_COMPLETION_TOKENS} of {max_length} tokens).",
            *([f"- pair summary: `{pairs_summary}`"] if pairs_summary else []),
        ],
    )
