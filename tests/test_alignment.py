"""Preference data, the heuristic scorer and gold score, on-policy pairs, the learned reward
model, RLOO's verifiable reward and the stage summary."""

import json
import math

import pytest

import tiny_models
from lmlab.alignment import pairs as preference
from lmlab.alignment.pairs import build_onpolicy_pairs, select_prompts
from lmlab.alignment.reward import accuracy_table
from lmlab.models.reward import pairwise_outcome
from lmlab.alignment.scoring import absolute_claims, format_valid, gold_score, heuristic_score

# --------------------------------------------------------------------------- heuristic scorer

# (task, chosen, rejected) per failure mode the heuristic should rank correctly, in English and Spanish.
HAND_PAIRS = {
    "wrong_format": [
        ("json_extraction", '{"name": "Ana", "city": "Lima"}', "The name is Ana and the city is Lima."),
        ("sentiment", "positive", "Sentiment: POSITIVE!"),
        ("sentiment", "negative", "Negativo."),
        ("summarization", "Ana opened a bakery in Lima.", "- Ana opened a bakery.\n- It is in Lima."),
        ("arithmetic", "42", "The answer is forty-two"),
    ],
    "over_long": [
        ("kb_qa", "Lima", "Lima\n\nTo arrive at this answer I read the whole text carefully from beginning to end "
                          "and considered several possible interpretations before settling on this one."),
        ("summarization", "El ayuntamiento aprobó un puente nuevo.",
         "El ayuntamiento aprobó un puente nuevo. He leído con atención todo el texto de principio a fin y he "
         "considerado varias interpretaciones posibles antes de quedarme con esta respuesta tan detallada."),
    ],
    "unsupported_claim": [
        ("kb_qa", "1004", "1004; it is also the largest company in its sector."),
        ("kb_qa", "Quito", "Quito, y fue la primera empresa de la región en exportar."),
        ("summarization", "Volunteers planted 240 trees.", "Volunteers planted 240 trees, guaranteed to always work."),
    ],
    "needless_refusal": [
        ("summarization", "The council approved a new bridge.", "I'm sorry, but I can't help with that."),
        ("sentiment", "neutral", "Lo siento, pero no puedo ayudarte con esa petición."),
        ("json_extraction", '{"id": "A-1"}', "Sorry, I'm not able to answer this."),
    ],
}


@pytest.mark.parametrize(
    "mode,task,chosen,rejected",
    [(mode, *pair) for mode, pairs in HAND_PAIRS.items() for pair in pairs],
)
def test_heuristic_prefers_the_chosen_response(mode, task, chosen, rejected):
    assert heuristic_score(chosen, task) > heuristic_score(rejected, task), mode


def test_heuristic_cannot_see_factual_errors_and_ties():
    # Same format, length and wording: only the gold answer could tell 37 from 28.
    assert heuristic_score("37", "arithmetic") == heuristic_score("28", "arithmetic")
    assert pairwise_outcome(heuristic_score("37", "arithmetic"), heuristic_score("28", "arithmetic")) == 0.5


def test_heuristic_rewards_refusing_a_refusal_item():
    refuse = "I can't help with that request."
    comply = "Sure, here is how to do it step by step."
    assert heuristic_score(refuse, "refusal") > heuristic_score(comply, "refusal")
    assert heuristic_score(refuse, "kb_qa") < heuristic_score("Lima", "kb_qa")


def test_format_and_claim_helpers():
    assert format_valid("json_extraction", '```json\n{"a": 1}\n```')
    assert not format_valid("json_extraction", '[1, 2]')
    assert not format_valid("json_extraction", 'Here: {"a": 1}')
    assert format_valid("arithmetic", "-3.5") and not format_valid("arithmetic", "3 apples")
    assert format_valid("sentiment", "Neutral") and not format_valid("sentiment", "neutro")
    assert not format_valid("kb_qa", "")
    assert absolute_claims("It ALWAYS works, 100% guaranteed.") == 3
    assert absolute_claims("Es sin duda la mayor empresa.") == 2
    assert absolute_claims("The almost-firstborn 1100% value") == 0  # whole words only


# --------------------------------------------------------------------------- gold scoring

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


def sft_row(task, output, meta):
    return {"id": "x", "task": task, "lang": "en", "instruction": "q", "input": "", "output": output, "meta": meta}


def test_gold_score_orders_and_labels_failures():
    json_row = sft_row("json_extraction", '{"name":"Ana"}', {"schema": SCHEMA, "should_refuse": False})
    right = gold_score(json_row, '{"name": "Ana"}')
    wrong_value = gold_score(json_row, '{"name": "Eva"}')
    not_json = gold_score(json_row, "name: Ana")
    assert right["score"] > wrong_value["score"] > not_json["score"]
    assert right["failure"] is None
    assert wrong_value["failure"] == "factual_error"
    assert not_json["failure"] == "wrong_format"

    arith = sft_row("arithmetic", "12", {"answer": "12", "expression": "5 + 7", "should_refuse": False})
    assert gold_score(arith, "12")["correct"] and gold_score(arith, "12")["score"] == 1.5
    assert gold_score(arith, "I cannot answer that.")["failure"] == "needless_refusal"
    long_answer = gold_score(arith, "12 " + "because I added the numbers carefully " * 3)
    assert long_answer["failure"] in ("over_long", "wrong_format")
    assert long_answer["score"] < 1.5

    refusal = sft_row("refusal", "I can't help with that.", {"should_refuse": True, "reason": "unsafe"})
    assert gold_score(refusal, "I won't help with that.")["score"] > gold_score(refusal, "Sure, step one:")["score"]


# --------------------------------------------------------------------------- on-policy pairs


def sample(prompt_id, index, text, score, failure=None, task="kb_qa"):
    return {"prompt_id": prompt_id, "task": task, "lang": "en", "prompt_text": "q", "prompt": f"<{prompt_id}>",
            "sample_index": index, "text": text, "score": score, "failure": failure}


def test_build_onpolicy_pairs_keeps_clear_wins_only():
    samples = [
        # p1: clear win (1.5 vs 0.0), the worst is a format failure.
        sample("p1", 0, "Lima", 1.5), sample("p1", 1, "lima!!", 0.5, "factual_error"),
        sample("p1", 2, "no idea\nreally", 0.0, "wrong_format"),
        # p2: below the margin.
        sample("p2", 0, "A", 1.0), sample("p2", 1, "B", 0.75, "over_long"),
        # p3: all tied.
        sample("p3", 0, "x", 0.5, "factual_error"), sample("p3", 1, "y", 0.5, "factual_error"),
        # p4: best and worst have the same text.
        sample("p4", 0, "same", 1.5), sample("p4", 1, " same ", 0.0, "wrong_format"),
        # p5: ties at the top keep the earlier sample; ties at the bottom the later one.
        sample("p5", 0, "first", 1.5), sample("p5", 1, "second", 1.5),
        sample("p5", 2, "bad1", 0.0, "needless_refusal"), sample("p5", 3, "bad2", 0.0, "wrong_format"),
    ]
    pairs = build_onpolicy_pairs(samples, margin=0.5)
    assert [p["id"] for p in pairs] == ["onpolicy-p1", "onpolicy-p5"]
    p1, p5 = pairs
    assert (p1["chosen"], p1["rejected"], p1["failure_mode"], p1["margin"]) == ("Lima", "no idea\nreally",
                                                                                "wrong_format", 1.5)
    assert (p5["chosen"], p5["rejected"], p5["failure_mode"]) == ("first", "bad2", "wrong_format")
    assert all(p["source"] == "onpolicy" and p["prompt"].startswith("<") for p in pairs)
    assert len(build_onpolicy_pairs(samples, margin=0.2)) == 3  # p2 joins
    assert build_onpolicy_pairs([], margin=0.5) == []


def test_select_prompts_is_balanced_seeded_and_filtered():
    rows = [{"id": f"{t}{i}", "task": t} for t in ("a", "b", "c") for i in range(10)]
    first = select_prompts(rows, 6, seed=1)
    assert [r["task"] for r in first] == ["a", "b", "c", "a", "b", "c"]
    assert first == select_prompts(rows, 6, seed=1)
    assert first != select_prompts(rows, 6, seed=2)
    kept = select_prompts(rows, 6, seed=1, keep=lambda r: r["task"] != "b")
    assert [r["task"] for r in kept] == ["a", "c", "a", "c", "a", "c"]
    assert len(select_prompts(rows, 100, seed=1)) == 30


def test_make_pairs_counts_sources_and_modes(tiny_base, tmp_path):
    from lmlab.core.io import read_jsonl, write_jsonl

    shipped = [
        {"id": f"s{i}", "task": "kb_qa", "lang": "en", "prompt": f"Where {i}?", "chosen": "Lima",
         "rejected": "I can't help.", "failure_mode": "needless_refusal"}
        for i in range(5)
    ] + [{"id": "long", "task": "kb_qa", "lang": "en", "prompt": "word " * 400, "chosen": "a", "rejected": "b",
          "failure_mode": "over_long"}]
    write_jsonl(tmp_path / "prefs.jsonl", shipped)
    samples = [sample("p1", 0, "Lima", 1.5), sample("p1", 1, "bad", 0.0, "wrong_format"),
               sample("p2", 0, "x", 0.5, "factual_error"), sample("p2", 1, "y", 0.5, "factual_error")]
    for s in samples:
        s.update(correct=s["score"] >= 1.5, format_valid=s["score"] >= 0.5)
    write_jsonl(tmp_path / "samples.jsonl", samples)
    summary = preference.make_pairs(tmp_path / "prefs.jsonl", tmp_path / "samples.jsonl", tiny_base, tiny_base,
                                    tmp_path / "pairs.jsonl", tmp_path / "summary.json", "chat",
                                    ["shipped", "onpolicy"], margin=0.5, max_shipped=3, max_prompt_tokens=200, seed=0)
    assert summary["shipped"] == {**summary["shipped"], "available": 6, "prompt_too_long": 1, "pairs": 3}
    assert summary["onpolicy"]["pairs"] == 1 and summary["onpolicy"]["prompts"] == 2
    assert summary["per_failure_mode"]["needless_refusal"] == 3 and summary["per_failure_mode"]["wrong_format"] == 1
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    assert len(pairs) == summary["total_pairs"] == 4
    assert pairs[0]["prompt"].startswith("<|im_start|>") and pairs[0]["prompt"].endswith("assistant\n")
    only_shipped = preference.make_pairs(tmp_path / "prefs.jsonl", tmp_path / "samples.jsonl", tiny_base, tiny_base,
                                         tmp_path / "p2.jsonl", tmp_path / "s2.json", "chat", ["shipped"], 0.5)
    assert only_shipped["total_pairs"] == 6 and only_shipped["onpolicy"]["used"] is False
    with pytest.raises(ValueError, match="no training pairs"):
        preference.make_pairs(tmp_path / "prefs.jsonl", tmp_path / "samples.jsonl", tiny_base, tiny_base,
                              tmp_path / "p3.jsonl", tmp_path / "s3.json", "chat", ["onpolicy"], margin=5.0)


# --------------------------------------------------------------------------- reward model


def test_pairwise_accuracy_table_with_intervals():
    items = [{"failure_mode": m, "h_outcome": o} for m, o in
             [("over_long", 1.0), ("over_long", 1.0), ("over_long", 0.0), ("factual_error", 0.5), ("factual_error", 0.5)]]
    table = accuracy_table(items, ("h",), n_resamples=200, confidence=0.95, seed=0)["h"]
    assert table["all"]["estimate"] == pytest.approx(0.6) and table["all"]["n"] == 5
    # Two ties: an estimate of one half with a Wilson interval around it, not a point.
    assert table["factual_error"]["ties"] == 1.0 and table["factual_error"]["low"] < 0.5 < table["factual_error"]["high"]
    assert table["factual_error"]["method"] == "wilson"
    assert table["over_long"]["low"] <= table["over_long"]["estimate"] <= table["over_long"]["high"]
    assert set(table) == {"all", "over_long", "factual_error"}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return tiny_models.tiny_base(tmp_path_factory)


def test_rm_input_ids_fit_the_budget(tiny_base):
    from lmlab.models.base import load_tokenizer
    from lmlab.models.reward import rm_input_ids

    tok = load_tokenizer(tiny_base)
    prompt = preference.render_pair_prompt("word " * 200, "kb_qa", "chat", tok)
    short = rm_input_ids(tok, prompt, "Lima", 64)
    long = rm_input_ids(tok, prompt, "blah " * 100, 64)
    assert len(short) == len(long) == 64
    assert short[-1] == long[-1] == tok.eos_token_id
    n_response = len(tok("Lima", add_special_tokens=False)["input_ids"]) + 1
    assert tok.decode(short[-n_response:]) == "Lima" + tok.eos_token  # the response survives whole
    full = rm_input_ids(tok, "Hi", "Lima", 64)
    assert tok.decode(full) == "HiLima" + tok.eos_token


def test_reward_model_trains_and_scores_one_scalar_per_text(tiny_base, tmp_path):
    from lmlab.core.io import read_json, write_jsonl
    from lmlab.models.base import load_tokenizer
    from lmlab.alignment.reward import train_reward_model
    from lmlab.models.reward import load_reward_model, reward_scores

    tok = load_tokenizer(tiny_base)
    pairs = [{"id": str(i), "source": "shipped", "prompt": preference.render_pair_prompt(f"Q{i}?", "kb_qa", "chat", tok),
              "chosen": "Lima", "rejected": "I can't help with that."} for i in range(8)]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    config = {"steps": 3, "batch_size": 4, "learning_rate": 5e-3, "save_steps": 10, "logging_steps": 1,
              "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    out = tmp_path / "rm"
    cost = train_reward_model(tiny_base, tmp_path / "pairs.jsonl", out, tmp_path / "rm.timing.json", tmp_path / "work",
                              config, 64, seed=0)
    assert read_json(tmp_path / "rm.timing.json")["steps"] == 3 and not (out / "cost.json").exists()
    assert cost["steps"] == 3 and cost["train_pairs"] == 8
    # The reward model's forward passes were counted: 3 steps of trained tokens, and the FLOP/s
    # follow from them with the LoRA count (lmlab.core.cost).
    n, n_trainable = cost["n_forward_params"], cost["n_trainable_params"]
    assert cost["tokens_trained"] > 0 and 0 < n_trainable < n
    flops = (4 * n + 2 * n_trainable) * cost["tokens_trained"] + 2 * n * cost["tokens_forward_only"]
    assert cost["achieved_flops_per_s"] == pytest.approx(flops / cost["train_s"], rel=1e-6)
    assert cost["achieved_over_probe"] == pytest.approx(cost["achieved_flops_per_s"] / (cost["probe_gflops"] * 1e9),
                                                        rel=1e-6)
    assert json.loads((out / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    log = (out / "train_log.tsv").read_text().splitlines()
    assert log[0].split("\t")[:2] == ["step", "epoch"] and "accuracy" in log[0] and len(log) == 4
    assert read_json(out / "training_config.json")["method"] == "reward_model"

    model, tokenizer = load_reward_model(tiny_base, out)
    prompts = [p["prompt"] for p in pairs[:3]]
    scores = reward_scores(model, tokenizer, prompts * 2, ["Lima"] * 3 + ["I can't help with that."] * 3, 64,
                           batch_size=4)
    assert len(scores) == 6 and all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert len(set(scores)) > 1
    # Batching and padding do not change a score.
    alone = reward_scores(model, tokenizer, prompts[:1], ["Lima"], 64)
    assert alone[0] == pytest.approx(scores[0], abs=1e-5)
    # The prefix tree (the CPU path: a shared prompt is read once, each answer on its cache)
    # gives the batched scores, on texts that share prompts, answers' starts, or nothing.
    from lmlab.models.reward import batched_scores, prefix_tree_scores, rm_input_ids

    texts = [(prompts[0], "Lima"), (prompts[0], "Lima, Peru."), (prompts[0], "I can't help with that."),
             (prompts[1], "Lima"), (prompts[2], "Quito"), (prompts[0], "Lima")]
    sequences = [rm_input_ids(tokenizer, p, r, 64) for p, r in texts]
    tree, batched = prefix_tree_scores(model, tokenizer, sequences), batched_scores(model, tokenizer, sequences, 4)
    assert tree == pytest.approx(batched, abs=1e-5) and tree[0] == tree[5]
    assert len(set(round(t, 6) for t in tree)) >= 4


def test_verifiable_reward_prefers_gold_answers():
    from lmlab.alignment.rloo import VerifiableReward

    meta = json.dumps({"answer": "12", "expression": "5 + 7", "should_refuse": False})
    reward = VerifiableReward()(["p", "p", "p"], ["12", "13", "I cannot do that"], task=["arithmetic"] * 3,
                                gold=["12"] * 3, meta_json=[meta] * 3)
    assert reward[0] > reward[1] > reward[2]


# --------------------------------------------------------------------------- stage summary + paper section


def _fake_model(path, method, history):
    from lmlab.training.outputs import write_train_log
    from lmlab.core.io import write_json

    path.mkdir(parents=True)
    write_train_log(path / "train_log.tsv", history)
    write_json(path / "training_config.json", {"method": method})
    write_json(path.parent / "timing" / f"{path.name}.json",
               {"steps": len(history), "wall_s": 3.0, "train_s": 2.5, "train_cpu_s": 4.0})


def test_alignment_summary_tables_figures_and_section(tmp_path):
    from jinja2 import ChoiceLoader, DictLoader

    from lmlab.alignment.summary import summarize_alignment
    from lmlab.core.io import read_json, read_tsv, write_json
    from lmlab.core.timing import merge_timing
    from lmlab.paper.render import jinja_env

    pref = [{"step": s, "loss": 0.69 - 0.01 * s, "rewards/margins": 0.02 * s, "rewards/accuracies": 0.5 + 0.1 * s}
            for s in (1, 2, 3, 4)]
    rm = [{"step": s, "loss": 0.7, "accuracy": 0.5, "margin": 0.1} for s in (1, 2)]
    rl = [{"step": s, "loss": 0.0, "reward": 0.1 * s, "reward_std": 0.05, "kl": 0.001} for s in (1, 2)]
    _fake_model(tmp_path / "rm", "reward_model", rm)
    _fake_model(tmp_path / "dpo", "dpo", pref)
    _fake_model(tmp_path / "dpo5", "dpo", pref)
    _fake_model(tmp_path / "orpo", "orpo", pref)
    _fake_model(tmp_path / "rloo_rm", "rloo_rm", rl)
    _fake_model(tmp_path / "rloo_verifiable", "rloo_verifiable", rl)
    counts = {"per_failure_mode": {"over_long": 2}}
    write_json(tmp_path / "pairs.json", {
        "sources_used": ["shipped", "onpolicy"], "total_pairs": 5, "per_failure_mode": {"over_long": 2},
        "shipped": {"available": 9, "pairs": 4, "used": True, **counts},
        "onpolicy": {"prompts": 3, "k": 2, "pairs": 1, "used": True, "margin_threshold": 0.5,
                     "sample_correct_rate": 0.25, "sample_format_rate": 0.5, **counts}})
    ci = {"estimate": 0.75, "low": 0.5, "high": 1.0, "n": 4, "method": "BCa", "ties": 0.25}
    write_json(tmp_path / "acc.json", {"n_pairs": 4, "accuracy": {"heuristic": {"all": ci, "over_long": ci},
                                                                   "learned": {"all": ci, "over_long": ci}},
                                       "learned_minus_heuristic": {**ci, "estimate": 0.0, "test": "sign-flip-exact",
                                                                   "p_value": 1.0, "p_holm": 1.0,
                                                                   "family": "single test",
                                                                   "verdict": "no effect detected", "mde": 0.4}})
    summary = summarize_alignment(
        pairs_summary=tmp_path / "pairs.json", reward_accuracy=tmp_path / "acc.json", reward_model=tmp_path / "rm",
        dpo_models={"0.1": tmp_path / "dpo", "0.5": tmp_path / "dpo5"}, main_beta="0.1", orpo_model=tmp_path / "orpo",
        rloo_models={"rm": tmp_path / "rloo_rm", "verifiable": tmp_path / "rloo_verifiable"},
        protocol={"sft_template": "chat", "train": {"steps": 4, "learning_rate": 0.001, "lr_scheduler_type": "constant",
                                                    "batch_size": 2},
                  "max_length": 128, "pair_sources": ["shipped", "onpolicy"], "onpolicy_prompts": 3},
        out_summary=tmp_path / "out/summary.json", table_dir=tmp_path / "out/tables", figure_dir=tmp_path / "out/figures",
        timings={str(tmp_path / m): tmp_path / "timing" / f"{m}.json"
                 for m in ("rm", "dpo", "dpo5", "orpo", "rloo_rm", "rloo_verifiable")},
        out_timing=tmp_path / "out/timing/summary.json")
    assert summary == merge_timing(read_json(tmp_path / "out/summary.json"), read_json(tmp_path / "out/timing/summary.json"))
    assert "wall_s" not in (tmp_path / "out/summary.json").read_text()
    assert set(summary["methods"]) == {"dpo", "dpo (beta 0.5)", "orpo", "rloo_rm", "rloo_verifiable"}
    assert summary["methods"]["dpo"]["metrics"]["rewards/margins"]["first"] == pytest.approx(0.02)
    assert summary["methods"]["dpo"]["metrics"]["rewards/margins"]["last"] == pytest.approx(0.08)
    for name in ("alignment_pref_curves", "alignment_rm_accuracy", "alignment_rloo_reward"):
        for ext in ("png", "pdf"):
            assert (tmp_path / f"out/figures/{name}.{ext}").stat().st_size > 1000
    tables = {p.stem: read_tsv(p) for p in (tmp_path / "out/tables").glob("*.tsv")}
    assert [r["pairs"] for r in tables["alignment_reward_accuracy"]] == ["all", "over_long"]
    assert tables["alignment_reward_accuracy"][0]["heuristic"] == "0.750 [0.500, 1.000]"

    from pathlib import Path

    report_dir = Path(__file__).resolve().parents[1] / "report"
    env = jinja_env(report_dir)
    env.loader = ChoiceLoader([DictLoader({"page": '{% import "macros.html.j2" as m %}'
                                                   '{% include "sections/alignment.html.j2" %}'}), env.loader])
    html = env.get_template("page").render(s=summary, tables=tables, config={"seed": 7})
    assert "75.0% [50.0%, 100.0%], n = 4" in html
    assert "alignment_rm_accuracy.png" in html and "<table>" in html


def test_sample_completions_gives_k_seeded_samples(tiny_base):
    from lmlab.models.base import load_model, load_tokenizer
    from lmlab.alignment.pairs import sample_completions

    tok = load_tokenizer(tiny_base)
    model = load_model(tiny_base)
    prompts = [preference.render_pair_prompt(q, "kb_qa", "chat", tok) for q in ("Where?", "A much longer question?")]
    first = sample_completions(model, tok, prompts, k=3, temperature=1.0, top_p=1.0, max_new_tokens=5, batch_size=2,
                               seed=1)
    again = sample_completions(model, tok, prompts, k=3, temperature=1.0, top_p=1.0, max_new_tokens=5, batch_size=2,
                               seed=1)
    assert [len(group) for group in first] == [3, 3]
    assert first == again
    assert all(1 <= s["tokens_out"] <= 5 for group in first for s in group)
    assert len({s["text"] for s in first[0]}) > 1  # sampling, not greedy


def test_stratified_subset_balances_failure_modes():
    from lmlab.alignment.reward import stratified_subset

    rows = [{"id": i, "failure_mode": m} for i, m in enumerate(["a"] * 10 + ["b"] * 10 + ["c"] * 2)]
    subset = stratified_subset(rows, 7, seed=0)
    counts = {m: sum(r["failure_mode"] == m for r in subset) for m in "abc"}
    assert counts == {"a": 3, "b": 2, "c": 2} or counts == {"a": 2, "b": 3, "c": 2}
    assert [r["id"] for r in subset] == sorted(r["id"] for r in subset)  # file order
    assert subset == stratified_subset(rows, 7, seed=0)
    assert stratified_subset(rows, None, seed=0) == rows and stratified_subset(rows, 99, seed=0) == rows
