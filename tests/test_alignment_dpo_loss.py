"""The reference DPO loss of tests/dpo_reference.py against TRL 1.16's DPOTrainer, and the
DPO adapter folder (SIGTERM and resume: tests/test_training.py).

TRL computes the DPO loss inline in DPOTrainer._compute_loss; we compare our loss, computed
from our own tokenisation and log-probabilities under a separately loaded SFT model as the
reference, with the trainer's own loss on the same batch, after a few training steps so the
policy and the reference differ.
"""

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from dpo_reference import completion_logps, dpo_loss, dpo_loss_from_models, pad_batch, tokenize_pair  # noqa: E402
from lmlab.alignment.dpo import train_dpo  # noqa: E402
from lmlab.models.base import load_tokenizer  # noqa: E402
from tiny_models import PAIRS, chat_prompts, tiny_base, tiny_sft_adapter, write_pairs  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tiny_base(tmp_path_factory)
    return base, tiny_sft_adapter(tmp_path_factory, base)


def load_sft(base, sft):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), sft)
    return model.eval()


def test_dpo_loss_formula_by_hand():
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0])
    rc, rr = torch.tensor([-3.5, -5.0]), torch.tensor([-3.5, -4.5])
    out = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # pair 0: (0.5) - (-0.5) = 1 -> -log sigmoid(0.5); pair 1: 0 - 0.5 = -0.5 -> -log sigmoid(-0.25)
    expected = [-math.log(1 / (1 + math.exp(-0.5))), -math.log(1 / (1 + math.exp(0.25)))]
    torch.testing.assert_close(out["losses"], torch.tensor(expected))
    torch.testing.assert_close(out["margins"], torch.tensor([0.5, -0.25]))
    assert out["accuracies"].tolist() == [1.0, 0.0]
    hinge = dpo_loss(pc, pr, rc, rr, beta=0.5, loss_type="hinge")["losses"]
    torch.testing.assert_close(hinge, torch.tensor([0.5, 1.25]))
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(pc, pr, rc, rr, loss_type="nope")


def test_tokenize_pair_masks_exactly_the_completion_and_eos(tiny):
    tokenizer = load_tokenizer(tiny[0])
    prompt = chat_prompts(tokenizer)[0]
    ids, mask = tokenize_pair(tokenizer, prompt, "5")
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert mask[:n_prompt] == [0] * n_prompt and all(mask[n_prompt:])
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[n_prompt:]) == "5" + tokenizer.eos_token


def test_completion_logps_sums_only_completion_tokens(tiny):
    tokenizer = load_tokenizer(tiny[0])
    model = load_sft(*tiny)
    prompt = chat_prompts(tokenizer)[0]
    short, long = tokenize_pair(tokenizer, prompt, "5"), tokenize_pair(tokenizer, prompt, "5 apples")
    input_ids, attention, completion = pad_batch([short[0], long[0]], [short[1], long[1]], tokenizer.pad_token_id)
    with torch.no_grad():
        logps, lengths = completion_logps(model, input_ids, attention, completion)
    assert lengths.tolist() == [sum(short[1]), sum(long[1])]
    assert torch.all(logps < 0)
    # Padding the short row must not change its value.
    alone, _ = completion_logps(model, *[t[:1, : len(short[0])] for t in (input_ids, attention, completion)])
    torch.testing.assert_close(logps[:1], alone, rtol=1e-5, atol=1e-5)


def test_dpo_loss_matches_trl_dpo_trainer(tiny, tmp_path):
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    base, sft = tiny
    tokenizer = load_tokenizer(sft, padding_side="right")
    prompts = chat_prompts(tokenizer)
    chosen = [c for _, c, _ in PAIRS]
    rejected = [r for _, _, r in PAIRS]
    policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), sft,
                                       is_trainable=True)
    args = DPOConfig(output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=2, learning_rate=5e-2,
                     beta=0.2, bf16=False, gradient_checkpointing=False, use_cpu=True, report_to=[],
                     save_strategy="no", logging_steps=1, disable_tqdm=True, seed=0, max_length=256)
    data = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(prompts, chosen, rejected)])
    trainer = DPOTrainer(model=policy, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()

    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    reference = load_sft(base, sft)
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, dict(inputs))
        ours = dpo_loss_from_models(trainer.model, reference, tokenizer, prompts, chosen, rejected, beta=0.2)
    # The policy has moved away from the SFT reference, so the check is not the trivial log 2.
    assert abs(float(trl_loss) - math.log(2)) > 1e-3
    torch.testing.assert_close(ours["loss"], trl_loss, rtol=1e-5, atol=1e-5)

    # TRL's reference is the SFT model (its frozen "ref" adapter), not the base model.
    with torch.no_grad():
        trl_ref_chosen, _ = trainer.compute_ref_log_probs(trainer.model, dict(inputs))
        ids, attention, completion = inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"]
        sft_logps, _ = completion_logps(reference, ids, attention, completion)
        base_logps, _ = completion_logps(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval(),
                                         ids, attention, completion)
    torch.testing.assert_close(trl_ref_chosen, sft_logps[: len(PAIRS)], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(trl_ref_chosen, base_logps[: len(PAIRS)], atol=1e-3)

    # Same check for the IPO loss, which normalises the log-ratios by completion length.
    trainer.loss_types = ["ipo"]
    with torch.no_grad():
        trl_ipo = trainer.compute_loss(trainer.model, dict(inputs))
        ours_ipo = dpo_loss_from_models(trainer.model, reference, tokenizer, prompts, chosen, rejected, beta=0.2,
                                        loss_type="ipo")
    torch.testing.assert_close(ours_ipo["loss"], trl_ipo, rtol=1e-5, atol=1e-5)


def test_dpo_sft_weight_adds_the_chosen_nll_and_is_recorded(tiny, tmp_path):
    from safetensors.torch import load_file

    base, sft = tiny
    write_pairs(tmp_path / "pairs.jsonl", load_tokenizer(sft))
    train = {"steps": 2, "batch_size": 2, "learning_rate": 1e-2, "save_steps": 100, "logging_steps": 1}
    kwargs = dict(train=train, beta=0.1, loss_type="sigmoid", max_length=128, seed=3)
    train_dpo(base, sft, tmp_path / "pairs.jsonl", tmp_path / "pure", tmp_path / "pure.json", tmp_path / "w1", **kwargs)
    train_dpo(base, sft, tmp_path / "pairs.jsonl", tmp_path / "rpo", tmp_path / "rpo.json", tmp_path / "w2",
              sft_weight=1.0, **kwargs)
    out = tmp_path / "pure"
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "training_config.json",
                 "train_log.tsv", "tokenizer_config.json"):
        assert (out / name).exists(), name
    assert not (out / "ref").exists(), "only the trained adapter is saved, not TRL's reference copy"
    assert not (tmp_path / "w1" / "checkpoints").exists(), "the work dir is removed once the adapter is published"
    log_steps = [line.split("\t")[0] for line in (out / "train_log.tsv").read_text().splitlines()[1:]]
    assert log_steps == ["1", "2"]
    pure, rpo = load_file(tmp_path / "pure/adapter_model.safetensors"), load_file(tmp_path / "rpo/adapter_model.safetensors")
    # The trained adapter moved away from the SFT adapter it started from.
    start = load_file(sft / "adapter_model.safetensors")
    assert any(not torch.allclose(pure[k], start[k]) for k in start)
    assert any(not torch.allclose(pure[k], rpo[k]) for k in pure), "the NLL term did not change the update"
    config = json.loads((tmp_path / "rpo/training_config.json").read_text())
    assert json.dumps(config).count('"sft_weight": 1.0') >= 1
    assert "NLL of the chosen answer" in (tmp_path / "rpo/README.md").read_text()

    # The first logged loss includes the NLL term: larger than pure DPO's log(2) at step 1.
    def first_loss(folder):
        header, row = (folder / "train_log.tsv").read_text().splitlines()[:2]
        return float(dict(zip(header.split("\t"), row.split("\t")))["loss"])

    assert first_loss(tmp_path / "rpo") > first_loss(tmp_path / "pure")
