"""Policy alignment from the SFT adapter: DPO, ORPO and RLOO (TRL 1.16), one protocol.

Every policy starts from the same point: the base model with the SFT adapter loaded as a
*trainable* PEFT adapter (`PeftModel.from_pretrained(base, sft, is_trainable=True)`), so
training continues the SFT LoRA and the result is again one LoRA adapter on the base,
loadable with `lmlab.models.base.load_model(BASE, adapter_dir)`.

The reference model of DPO and of RLOO's KL term must be the SFT model, not the base. TRL
1.16 does this itself for a PeftModel that already carries an adapter: it adds a frozen
copy of it under the name "ref" and computes reference log-probs with that adapter active
(`DPOTrainer.__init__` / `RLOOTrainer.__init__`, "ref" adapter; `use_adapter(model, "ref")`
in the loss). Disabling the adapter would give the *base* model, which is not the
reference we want. We keep TRL's mechanism and check it (the card records the largest
difference between the "ref" adapter's weights and the SFT adapter's after training, which
must be 0). ORPO has no reference model.

Same protocol for every method: same seed, same training prompts (DPO/ORPO: the pairs file;
RLOO: `alignment.select_prompts` over sft_train), same steps, learning rate and scheduler
(config `alignment.train`), same max length. Training runs in a work folder that is not a
declared output; a kill leaves checkpoints there, and the next run resumes from the last
one; SIGTERM saves a checkpoint and exits non-zero. On success the adapter, tokenizer, card,
training_config.json, train_log.tsv and cost.json are written to a temporary sibling of the
output folder and renamed into place.

With `hpc.gpus` > 1 the step scripts start these functions through `lmlab.core.launch.run`
(`accelerate launch`, DDP, one process per GPU): every process trains on its share of each
batch (pairs and completions seen scale with `world_size`, recorded in cost.json), a signal
seen by any process stops all of them at the same step, and only the main process writes
the output folder (`finish`).
"""

import hashlib
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from transformers import TrainerCallback

from lmlab.core.io import dumps, read_jsonl, sha256_tree, write_json, write_tsv
from lmlab.core.launch import any_process

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- harness


class StopOnSignal(TrainerCallback):
    """On SIGTERM/SIGINT: finish the current step, save a checkpoint, stop; the caller exits non-zero."""

    def __init__(self, signals=(signal.SIGTERM, signal.SIGINT)):
        self.received = None
        self._previous = {}
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        log.warning("received signal %d: saving a checkpoint after this step", signum)
        self.received = signum

    def on_step_end(self, args, state, control, **kwargs):
        # Under DDP every process must stop at the same step (a process that goes on alone
        # waits forever in the next all-reduce): a signal seen by any process stops them all.
        if any_process(self.received is not None) and self.received is None:
            self.received = signal.SIGTERM
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class TrainingInterrupted(SystemExit):
    """Raised after the checkpoint of a signalled run is saved (exit code 128 + signal)."""


def work_dir_for(work_root, config, inputs=()):
    """A work folder per training configuration and input contents (sha256), so a changed
    config or changed data never resumes a stale run."""
    key = {"config": config, "inputs": {str(p): _content_hash(p) for p in inputs}}
    digest = hashlib.sha256(dumps(key).encode()).hexdigest()[:12]
    return Path(work_root) / digest


def _content_hash(path):
    # A base model folder records its weights' hash in base_model.json; hashing that file
    # avoids reading hundreds of MB on every run.
    record = Path(path) / "base_model.json"
    return sha256_tree(record if record.is_file() else path)


def last_checkpoint(work_dir):
    """The newest *complete* checkpoint (a SIGKILL can interrupt a save); shared with SFT."""
    from lmlab.sft.train import last_checkpoint as newest_complete_checkpoint

    return newest_complete_checkpoint(work_dir)


def common_args(config, work_dir, seed, device):
    """TrainingArguments shared by every trainer here (CPU-safe: no bf16, no checkpointing)."""
    use_gpu = device == "cuda"
    return {
        "output_dir": str(work_dir),
        "max_steps": config["steps"],
        "learning_rate": config["learning_rate"],
        "lr_scheduler_type": config.get("lr_scheduler", "constant"),
        "warmup_steps": 0,
        "gradient_accumulation_steps": config.get("grad_accum", 1),
        "logging_steps": config.get("logging_steps", 1),
        "save_strategy": "steps",
        "save_steps": config["save_steps"],
        "save_total_limit": 1,
        "seed": seed,
        "data_seed": seed,
        "bf16": use_gpu and _bf16_ok(),
        "fp16": False,
        "gradient_checkpointing": False,
        "use_cpu": not use_gpu,
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
    }


def _bf16_ok():
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


# Timing fields differ run to run; the log keeps only what the seed determines.
TIMING_KEYS = ("step_time",)


def log_rows(log_history):
    """Per-step training log rows (the final summary entry with train_runtime is left out)."""
    return [
        {k: v for k, v in entry.items() if k not in TIMING_KEYS}
        for entry in log_history
        if "step" in entry and "train_runtime" not in entry
    ]


def write_train_log(path, log_history):
    rows = log_rows(log_history)
    keys = sorted({k for r in rows for k in r if k not in ("step", "epoch")})
    write_tsv(path, rows, ["step", "epoch", *keys], digits=6)
    return rows


def final_metrics(rows, keys):
    """Mean of each key over the last logged quarter of training (at least one row)."""
    out = {}
    for key in keys:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            tail = values[-max(1, len(values) // 4) :]
            out[key] = sum(tail) / len(tail)
            out[f"{key}_first"] = values[0]
    return out


def hardware_line(device):
    import platform

    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    return f"CPU {platform.machine()} x{os.cpu_count()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}"


def write_card(path, title, sections):
    """README.md model card: a title and `## heading` sections of markdown lines."""
    lines = [f"# {title}", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", *body, ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")


def kv_lines(mapping):
    return [f"- `{k}`: {json.dumps(v, sort_keys=True, ensure_ascii=False)}" for k, v in mapping.items()]


def publish(tmp_dir, out_dir):
    """Rename a finished temporary folder into the declared output (atomic on one filesystem)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_dir, out_dir)


def staging_dir(out_dir):
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def run_trainer(trainer, work_dir, stopper):
    """trainer.train(), resuming from the work folder's last checkpoint; SIGTERM -> exit non-zero."""
    from lmlab.core.cost import gemm_probe

    resume = last_checkpoint(work_dir)
    if resume:
        log.info("resuming from %s", resume)
    # What this machine delivered just before training (matmul FLOP/s with the rule's threads):
    # on a shared machine it says how much of the wall time is other jobs' load.
    probe = gemm_probe(seconds=0.5, device=str(trainer.args.device))
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        trainer.train(resume_from_checkpoint=resume)
    finally:
        stopper.restore()
    if stopper.received is not None:
        raise TrainingInterrupted(128 + stopper.received)
    # Wall time suffers from other jobs on a shared machine; process CPU time much less so.
    return {
        "resumed_from": Path(resume).name if resume else None,
        "train_s": time.perf_counter() - started,
        "train_cpu_s": time.process_time() - cpu_started,
        "probe_gflops": probe["flops_per_s"] / 1e9,
    }


def load_policy(base_dir, sft_dir, device, dtype):
    """Base + SFT adapter as a trainable PEFT model (adapter name "default")."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    model = PeftModel.from_pretrained(model, sft_dir, is_trainable=True)
    return model.to(device)


def sft_adapter_state(sft_dir):
    """The SFT adapter's saved weights. Saved keys look like `...q_proj.lora_A.weight`; the
    live parameter of adapter "ref" is `...q_proj.lora_A.ref.weight`."""
    from safetensors.torch import load_file

    return load_file(str(Path(sft_dir) / "adapter_model.safetensors"))


def max_ref_drift(model, sft_dir):
    """Largest |w_ref - w_sft| over the "ref" adapter's LoRA weights (None without a ref adapter)."""
    state = sft_adapter_state(sft_dir)
    if "ref" not in model.peft_config:
        return None
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


def finish(trainer, model, tokenizer, out_dir, work_dir, card_title, card_sections, training_config,
           log_keys, cost, extra_files=None):
    """Write the adapter folder (adapter, tokenizer, card, config, log, cost) and publish it.

    Under DDP (lmlab.core.launch) only the main process writes, publishes and removes the work
    folder; the others wait for it and return the same cost record."""
    from accelerate import PartialState

    state = PartialState()
    check_finite(model)
    metrics = final_metrics(log_rows(trainer.state.log_history), log_keys)
    cost = {**cost, "steps": trainer.state.global_step, "final_metrics": metrics}
    if not state.is_main_process:
        state.wait_for_everyone()
        return cost
    tmp = staging_dir(out_dir)
    adapters = ["default"] if hasattr(model, "peft_config") and "default" in model.peft_config else None
    if adapters:
        model.save_pretrained(tmp, selected_adapters=adapters)
    else:
        model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_train_log(tmp / "train_log.tsv", trainer.state.log_history)
    write_json(tmp / "training_config.json", training_config)
    write_json(tmp / "cost.json", cost)
    for name, obj in (extra_files or {}).items():
        write_json(tmp / name, obj)
    sections = [*card_sections, ("Final metrics (mean of the last quarter of logged steps)", kv_lines(metrics)),
                ("Cost", kv_lines({k: v for k, v in cost.items() if k != "final_metrics"}))]
    write_card(tmp / "README.md", card_title, sections)
    publish(tmp, out_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    state.wait_for_everyone()
    return cost


# A pair is trained on only if at least this many response tokens fit after its prompt.
MIN_COMPLETION_TOKENS = 8


def _pairs_dataset(pairs_path, tokenizer, max_length):
    """(dataset, rows, dropped): the training pairs whose prompt leaves room for a response.

    ORPO in TRL 1.16 keeps an over-long prompt whole and empties the response, which makes its
    loss NaN; DPO drops such pairs itself. Both get the same pairs here.
    """
    from datasets import Dataset

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


def check_finite(model):
    """Refuse to publish an adapter with NaN or infinite weights."""
    import torch

    bad = [name for name, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(f"training produced non-finite weights in {len(bad)} tensors, e.g. {bad[0]}")


def _source_counts(rows):
    counts = {}
    for r in rows:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- DPO


DPO_LOG_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
                "logps/chosen", "logps/rejected")


def train_dpo(base_dir, sft_dir, pairs_path, out_dir, work_root, train, beta, loss_type, max_length, seed,
              template="chat", pairs_summary=None, callbacks=(), sft_weight=0.0):
    """Rule alignment_dpo: DPO from the SFT adapter against the SFT model as reference.

    `sft_weight` > 0 adds TRL's "sft" loss (NLL of the chosen answer) with that weight, as in
    RPO: pure DPO only separates chosen from rejected and can lower both, which on the CPU
    default drove the policy to answer with EOS alone."""
    from trl import DPOConfig, DPOTrainer

    from lmlab.models.base import load_tokenizer, pick_device_dtype

    device, dtype = pick_device_dtype()
    config = {"method": "dpo", "train": dict(train), "beta": beta, "loss_type": loss_type, "max_length": max_length,
              "sft_weight": sft_weight, "seed": seed, "sft": str(sft_dir), "pairs": str(pairs_path)}
    work_dir = work_dir_for(work_root, config, [base_dir, sft_dir, pairs_path])
    stopper = StopOnSignal()
    tokenizer = load_tokenizer(sft_dir, padding_side="right")
    dataset, rows, dropped = _pairs_dataset(pairs_path, tokenizer, max_length)
    model = load_policy(base_dir, sft_dir, device, dtype)
    args = DPOConfig(**common_args(train, work_dir, seed, device), per_device_train_batch_size=train["batch_size"],
                     beta=beta, loss_type=[loss_type, "sft"] if sft_weight else [loss_type],
                     loss_weights=[1.0, sft_weight] if sft_weight else None,
                     max_length=max_length, precompute_ref_log_probs=False)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[*callbacks, stopper])
    if "ref" not in trainer.model.peft_config:
        raise RuntimeError("DPOTrainer did not add the frozen 'ref' copy of the SFT adapter")
    started = time.perf_counter()
    run = run_trainer(trainer, work_dir, stopper)
    drift = max_ref_drift(trainer.model, sft_dir)
    if drift is None or drift > 0:
        raise RuntimeError(f"the DPO reference moved away from the SFT adapter (max |diff| = {drift})")
    n_train = len(dataset)
    cost = {"device": device, "hardware": hardware_line(device), "wall_s": time.perf_counter() - started, **run,
            "world_size": trainer.args.world_size,
            "pairs_seen": train["steps"] * train["batch_size"] * train.get("grad_accum", 1) * trainer.args.world_size,
            "train_pairs": n_train, "pairs_left_out": dropped}
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), the SFT LoRA "
            "loaded trainable and trained further (same rank and target modules as SFT).",
            "- reference: the SFT model. TRL 1.16's DPOTrainer copies the loaded SFT adapter into a frozen "
            "adapter named `ref` and computes reference log-probs with it active; we chose this over "
            "disabling the adapter (which would give the *base* model as reference) and over merging SFT "
            "into the base (the result would not load on BASE as one adapter).",
            f"- check: max |w_ref - w_sft| after training = {drift:.3g} (must be 0).",
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        ("Data", [f"- training pairs: {n_train} from `{pairs_path}`; per source: {json.dumps(_source_counts(rows))}; "
                  f"{dropped} left out (prompt leaves < {MIN_COMPLETION_TOKENS} of {max_length} tokens).",
                  *( [f"- pair summary: `{pairs_summary}`"] if pairs_summary else [])]),
        ("Config", kv_lines({**config, "seed": seed})),
        ("Hardware", [f"- {hardware_line(device)}", f"- seed {seed}"]),
    ]
    return finish(trainer, trainer.model, tokenizer, out_dir, work_dir, f"DPO adapter (beta {beta}, {loss_type}"
                  + (f" + {sft_weight:g} x NLL of the chosen answer)" if sft_weight else ")"),
                  sections, config, DPO_LOG_KEYS, cost)


# --------------------------------------------------------------------------- ORPO


ORPO_LOG_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
                 "nll_loss", "log_odds_ratio", "log_odds_chosen")


def train_orpo(base_dir, sft_dir, pairs_path, out_dir, work_root, train, beta, max_length, seed, template="chat",
               pairs_summary=None, callbacks=()):
    """Rule alignment_orpo: ORPO (no reference model) continuing the SFT adapter."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    from lmlab.models.base import load_tokenizer, pick_device_dtype

    device, dtype = pick_device_dtype()
    config = {"method": "orpo", "train": dict(train), "beta": beta, "max_length": max_length, "seed": seed,
              "sft": str(sft_dir), "pairs": str(pairs_path)}
    work_dir = work_dir_for(work_root, config, [base_dir, sft_dir, pairs_path])
    stopper = StopOnSignal()
    tokenizer = load_tokenizer(sft_dir, padding_side="right")
    dataset, rows, dropped = _pairs_dataset(pairs_path, tokenizer, max_length)
    model = load_policy(base_dir, sft_dir, device, dtype)
    args = ORPOConfig(**common_args(train, work_dir, seed, device), per_device_train_batch_size=train["batch_size"],
                      beta=beta, max_length=max_length)
    trainer = ORPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          callbacks=[*callbacks, stopper])
    started = time.perf_counter()
    run = run_trainer(trainer, work_dir, stopper)
    cost = {"device": device, "hardware": hardware_line(device), "wall_s": time.perf_counter() - started, **run,
            "world_size": trainer.args.world_size,
            "pairs_seen": train["steps"] * train["batch_size"] * train.get("grad_accum", 1) * trainer.args.world_size,
            "train_pairs": len(dataset), "pairs_left_out": dropped}
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), the SFT LoRA "
            "loaded trainable and trained further with ORPO (`trl.experimental.orpo`).",
            "- no reference model: ORPO's loss is the chosen NLL plus beta times the log-odds-ratio term. "
            "Because it starts from the SFT adapter, not from the base, it is compared with DPO from the "
            "same start (the ORPO paper trains from the base model; this run does not).",
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        ("Data", [f"- training pairs: {len(dataset)} from `{pairs_path}`; per source: "
                  f"{json.dumps(_source_counts(rows))}; {dropped} left out (prompt leaves < "
                  f"{MIN_COMPLETION_TOKENS} of {max_length} tokens).", *([f"- pair summary: `{pairs_summary}`"] if pairs_summary else [])]),
        ("Config", kv_lines(config)),
        ("Hardware", [f"- {hardware_line(device)}", f"- seed {seed}"]),
    ]
    return finish(trainer, trainer.model, tokenizer, out_dir, work_dir, f"ORPO adapter (beta {beta})", sections,
                  config, ORPO_LOG_KEYS, cost)


# --------------------------------------------------------------------------- RLOO


RLOO_LOG_KEYS = ("loss", "reward", "reward_std", "kl", "entropy", "completions/mean_length")


class VerifiableReward:
    """RLOO reward from the gold answer: lmlab.alignment.pairs.gold_score (correct + format - length)."""

    __name__ = "verifiable"

    def __call__(self, prompts, completions, task, gold, meta_json, **kwargs):
        from lmlab.alignment.pairs import gold_score

        return [
            gold_score({"task": t, "output": g, "meta": json.loads(m)}, c)["score"]
            for c, t, g, m in zip(completions, task, gold, meta_json)
        ]


class LearnedReward:
    """RLOO reward from the learned reward model, on the input it was trained on
    (rendered prompt + completion + EOS, fitted by lmlab.alignment.reward.rm_input_ids)."""

    __name__ = "reward_model"

    def __init__(self, model, tokenizer, max_length, batch_size=16):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    def __call__(self, prompts, completions, **kwargs):
        from lmlab.alignment.reward import reward_scores

        return reward_scores(self.model, self.tokenizer, prompts, completions, self.max_length, self.batch_size)


def rloo_dataset(sft_train, n_prompts, template, tokenizer, seed, max_prompt_tokens=None):
    """The on-policy sampler's prompts (same selection), with the gold columns the verifiable reward reads."""
    from datasets import Dataset

    from lmlab.alignment.pairs import training_prompts

    rows, prompts = training_prompts(sft_train, n_prompts, seed, template, tokenizer, max_prompt_tokens)
    return Dataset.from_list(
        [
            {
                "prompt": prompt,
                "task": r["task"],
                "gold": r["output"],
                "meta_json": json.dumps(r.get("meta") or {}, sort_keys=True),
            }
            for r, prompt in zip(rows, prompts)
        ]
    ), rows


def train_rloo(base_dir, sft_dir, sft_train, out_dir, work_root, train, reward, rloo, seed, template="chat",
               reward_dir=None, callbacks=()):
    """Rule alignment_rloo: RLOO from the SFT adapter, rewarded by the learned RM or by gold checks."""
    from trl import RLOOConfig, RLOOTrainer

    from lmlab.models.base import load_tokenizer, pick_device_dtype

    device, dtype = pick_device_dtype()
    config = {"method": f"rloo_{reward}", "train": dict(train), "rloo": dict(rloo), "seed": seed,
              "template": template,
              "sft": str(sft_dir), "reward_model": str(reward_dir) if reward == "rm" else None}
    work_dir = work_dir_for(work_root, config, [base_dir, sft_dir, sft_train, *([reward_dir] if reward == "rm" else [])])
    stopper = StopOnSignal()
    tokenizer = load_tokenizer(sft_dir, padding_side="left")
    dataset, rows = rloo_dataset(sft_train, rloo["prompts"], template, tokenizer, seed, rloo.get("max_prompt_tokens"))
    if reward == "rm":
        from lmlab.alignment.reward import load_reward_model

        rm_model, rm_tokenizer = load_reward_model(base_dir, reward_dir, device, dtype)
        reward_func = LearnedReward(rm_model, rm_tokenizer, max_length=rloo["reward_max_length"])
    elif reward == "verifiable":
        reward_func = VerifiableReward()
    else:
        raise ValueError(f"reward {reward!r} is not one of rm, verifiable")
    model = load_policy(base_dir, sft_dir, device, dtype)
    generations = rloo["num_generations"]
    args = RLOOConfig(
        **common_args(train, work_dir, seed, device),
        per_device_train_batch_size=rloo["prompts_per_step"] * generations,
        num_generations=generations,
        max_completion_length=rloo["max_completion_length"],
        temperature=rloo["temperature"],
        top_p=rloo.get("top_p", 1.0),
        beta=rloo["beta"],
        shuffle_dataset=True,
        disable_dropout=True,  # as DPO and ORPO do by default; SFT adapters carry LoRA dropout
    )
    trainer = RLOOTrainer(model=model, reward_funcs=[reward_func], args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[*callbacks, stopper])
    if rloo["beta"] > 0 and "ref" not in trainer.model.peft_config:
        raise RuntimeError("RLOOTrainer did not add the frozen 'ref' copy of the SFT adapter")
    started = time.perf_counter()
    run = run_trainer(trainer, work_dir, stopper)
    drift = max_ref_drift(trainer.model, sft_dir) if rloo["beta"] > 0 else None
    if drift is not None and drift > 0:
        raise RuntimeError(f"the RLOO reference moved away from the SFT adapter (max |diff| = {drift})")
    cost = {"device": device, "hardware": hardware_line(device), "wall_s": time.perf_counter() - started, **run,
            "world_size": trainer.args.world_size, "prompts": len(dataset),
            "completions_generated": train["steps"] * rloo["prompts_per_step"] * generations * trainer.args.world_size}
    reward_line = (f"- reward: the learned reward model `{reward_dir}` (LoRA sequence classifier over the base), "
                   "scoring rendered prompt + completion + EOS, as in its training."
                   if reward == "rm" else
                   "- reward: verifiable, from the gold answer through `lmlab.evaluation.metrics` (correct 1.0 + format valid "
                   "0.5 - over-long 0.25; `lmlab.alignment.pairs.gold_score`).")
    sections = [
        ("Start point", [
            f"- policy: base `{base_dir}` + SFT adapter `{sft_dir}` (template `{template}`), trained further "
            "with TRL's RLOOTrainer (REINFORCE leave-one-out).",
            f"- KL reference: the SFT model (TRL's frozen `ref` copy of the SFT adapter), beta {rloo['beta']}"
            + (f"; max |w_ref - w_sft| after training = {drift:.3g}." if drift is not None else "."),
            reward_line,
            "- load: `lmlab.models.base.load_model(BASE, this_folder)`.",
        ]),
        ("Data", [f"- prompts: {len(dataset)} sft_train rows (`lmlab.alignment.pairs.select_prompts`, seed {seed}), "
                  "the same prompts as the on-policy pair sampler.",
                  f"- per task: {json.dumps(_task_counts(rows))}"]),
        ("Config", kv_lines(config)),
        ("Hardware", [f"- {hardware_line(device)}", f"- seed {seed}"]),
    ]
    return finish(trainer, trainer.model, tokenizer, out_dir, work_dir, f"RLOO adapter ({reward} reward)", sections,
                  config, RLOO_LOG_KEYS, cost)


def _task_counts(rows):
    counts = {}
    for r in rows:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return dict(sorted(counts.items()))
