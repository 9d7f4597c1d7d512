"""Checks of the committed raw data and of the generator that produced it.

The data checks read `data/raw/` as committed; the regeneration check rebuilds it from the
seed in GENERATOR.json and compares bytes. Checks use their own small helpers (an AST
arithmetic walker, a prompt normaliser) rather than the generator's, so a bug in one is not
hidden by the same bug in the other.
"""

import ast
import json
import re
import statistics
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from lmlab.data.generate import write_dataset
from lmlab.data.generate.common import DATA_FILES, GENERATOR_VERSION, normalize_prompt
from lmlab.data.generate.datasheet import COUNTS_BEGIN, COUNTS_END, count_table
from lmlab.data.generate.kb import kb_rows, make_kb

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
DATASHEET = ROOT / "data" / "README.md"

SFT_SPLITS = ("train", "validation", "test")
SFT_FIELDS = {"id", "task", "lang", "instruction", "input", "output", "meta"}
PREFERENCE_FIELDS = {"id", "task", "lang", "prompt", "chosen", "rejected", "failure_mode"}
FAILURE_MODES = {"wrong_format", "factual_error", "over_long", "unsupported_claim", "needless_refusal"}
TOOLS = {"calculator": {"expression"}, "search_kb": {"query", "k"}, "extract_fields": {"text", "fields"}}
META_KEYS = {
    "json_extraction": {"schema", "should_refuse"},
    "arithmetic": {"answer", "expression", "should_refuse"},
    "sentiment": {"label", "should_refuse"},
    "summarization": {"reference", "should_refuse"},
    "kb_qa": {"kb_ids", "answer", "should_refuse"},
    "refusal": {"reason", "should_refuse"},
    "long_context_qa": {"answer", "depth", "answer_char_start", "should_refuse"},
}


def load(name):
    with open(RAW / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def normalise(text):
    text = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.findall(r"[0-9a-z]+", text))


def sft_key(row):
    return normalise(row["instruction"] + "\n" + row["input"])


ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}


def arith(expression):
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
            return ARITHMETIC[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"disallowed node {type(node).__name__} in {expression!r}")
    return walk(ast.parse(expression, mode="eval"))


@pytest.fixture(scope="module")
def sft():
    return {split: load(f"sft_{split}.jsonl") for split in SFT_SPLITS}


@pytest.fixture(scope="module")
def kb():
    return {row["id"]: row for row in load("kb.jsonl")}


@pytest.fixture(scope="module")
def agents():
    return load("agent_tasks.jsonl")


# ----------------------------------------------------------------------------- reproducibility


def test_regeneration_is_byte_identical(tmp_path):
    manifest = json.loads((RAW / "GENERATOR.json").read_text(encoding="utf-8"))
    assert manifest["version"] == GENERATOR_VERSION
    write_dataset(tmp_path, manifest["seed"])
    committed = sorted(p.name for p in RAW.iterdir())
    regenerated = sorted(p.name for p in tmp_path.iterdir())
    assert regenerated == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (RAW / name).read_bytes(), f"{name} differs from a fresh run"


def test_another_seed_gives_other_data():
    assert kb_rows(make_kb(7)) != kb_rows(make_kb(1234))


def test_files_are_canonical_jsonl():
    for name in DATA_FILES:
        raw = (RAW / name).read_bytes()
        assert b"\r" not in raw and raw.endswith(b"\n")
        for line in raw.decode("utf-8").splitlines():
            assert line == json.dumps(json.loads(line), ensure_ascii=False, sort_keys=True)


def test_datasheet_counts_match_the_files():
    text = DATASHEET.read_text(encoding="utf-8")
    block = text[text.index(COUNTS_BEGIN) + len(COUNTS_BEGIN):text.index(COUNTS_END)]
    assert block.strip() == count_table(RAW).strip()
    assert "CC0" in text and "--seed 1234" in text


# ----------------------------------------------------------------------------- all files


def test_ids_unique_and_both_languages_in_every_file():
    for name in DATA_FILES:
        rows = load(name)
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)), name
        langs = Counter(row["lang"] for row in rows)
        assert set(langs) == {"en", "es"}, name
        assert 0.4 <= langs["en"] / len(rows) <= 0.6, f"{name}: {langs}"


def test_total_size_stays_small():
    assert sum((RAW / name).stat().st_size for name in DATA_FILES) < 6 * 1024 * 1024


# ----------------------------------------------------------------------------- SFT


def test_sft_rows_have_the_documented_shape(sft):
    for split, rows in sft.items():
        tasks = Counter(row["task"] for row in rows)
        assert set(tasks) == set(META_KEYS), split
        assert len(set(tasks.values())) == 1, f"{split}: unbalanced {tasks}"
        for row in rows:
            assert set(row) == SFT_FIELDS
            assert set(row["meta"]) == META_KEYS[row["task"]], row["id"]
            assert row["meta"]["should_refuse"] is (row["task"] == "refusal"), row["id"]
            assert row["instruction"].strip() and row["output"].strip()
    assert Counter(row["task"] for row in sft["test"]) == Counter({task: 50 for task in META_KEYS})


def test_no_prompt_overlap_within_or_across_splits(sft):
    keys = {}
    for split, rows in sft.items():
        split_keys = [sft_key(row) for row in rows]
        assert len(split_keys) == len(set(split_keys)), f"normalised duplicate inside {split}"
        keys[split] = set(split_keys)
        exact = [row["instruction"] + "\n" + row["input"] for row in rows]
        assert len(exact) == len(set(exact))
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]


def test_json_extraction_outputs_validate_against_their_schema(sft):
    rows = [row for rows in sft.values() for row in rows if row["task"] == "json_extraction"]
    formats = set()
    for row in rows:
        schema = row["meta"]["schema"]
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert schema["required"] and set(schema["required"]) <= set(schema["properties"])
        formats |= {p.get("format") for p in schema["properties"].values()}
        output = json.loads(row["output"])
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [e.message for e in validator.iter_errors(output)]
        assert not errors, (row["id"], errors)
        assert row["output"] == json.dumps(output, ensure_ascii=False, separators=(",", ":")), "not compact"
        assert list(output) == schema["required"], row["id"]
    assert {"date", "email"} <= formats


def test_arithmetic_expressions_evaluate_to_the_answer(sft):
    for rows in sft.values():
        for row in (r for r in rows if r["task"] == "arithmetic"):
            assert re.fullmatch(r"-?\d+", row["output"]), row["id"]
            assert row["meta"]["answer"] == row["output"]
            assert arith(row["meta"]["expression"]) == int(row["output"]), row["id"]


def test_arithmetic_walker_rejects_code():
    with pytest.raises(ValueError):
        arith("__import__('os').system('true')")


def test_long_context_answers_occur_once_at_their_offset(sft):
    for rows in sft.values():
        for row in (r for r in rows if r["task"] == "long_context_qa"):
            meta, document = row["meta"], row["input"]
            start = meta["answer_char_start"]
            assert document.count(meta["answer"]) == 1, row["id"]
            assert document[start:start + len(meta["answer"])] == meta["answer"] == row["output"]
            assert 3000 <= len(document) <= 7000
            assert meta["depth"] in (0.05, 0.25, 0.5, 0.75, 0.95)
            assert abs(start / len(document) - meta["depth"]) < 0.1, row["id"]
    depths = Counter(r["meta"]["depth"] for r in sft["test"] if r["task"] == "long_context_qa")
    assert len(depths) == 5 and max(depths.values()) - min(depths.values()) <= 1


def test_kb_answers_come_from_the_cited_documents(sft, kb):
    for rows in sft.values():
        for row in (r for r in rows if r["task"] == "kb_qa"):
            answer = row["meta"]["answer"]
            assert answer == row["output"] and answer in row["input"]
            for kb_id in row["meta"]["kb_ids"]:
                assert kb[kb_id]["lang"] == row["lang"]
                assert answer in kb[kb_id]["text"] and kb[kb_id]["text"] in row["input"]


def test_short_outputs_and_summaries(sft):
    for rows in sft.values():
        for row in rows:
            if row["task"] == "summarization":
                assert row["output"] == row["meta"]["reference"]
                assert len(row["output"].split()) < 25
                assert 3 <= len(re.findall(r"[.!?](?:\s|$)", row["input"])) <= 6, row["id"]
            elif row["task"] in ("sentiment", "arithmetic", "kb_qa", "long_context_qa"):
                assert len(row["output"].split()) <= 8, row["id"]


def test_sentiment_labels_and_documented_length_bias(sft):
    rows = [r for rows in sft.values() for r in rows if r["task"] == "sentiment"]
    assert {r["output"] for r in rows} == {"positive", "negative", "neutral"}
    assert all(r["meta"]["label"] == r["output"] for r in rows)
    length = {label: statistics.mean(len(r["input"]) for r in rows if r["output"] == label)
              for label in ("positive", "negative")}
    assert length["negative"] > 1.2 * length["positive"]


def test_refusals(sft):
    for rows in sft.values():
        refusals = [r for r in rows if r["task"] == "refusal"]
        assert {r["meta"]["reason"] for r in refusals} == {"unsafe", "invalid"}
        for row in refusals:
            assert len(re.findall(r"[.!?](?:\s|$)", row["output"])) == 1, row["id"]


# ----------------------------------------------------------------------------- preferences


def test_preferences(sft):
    test_prompts = {sft_key(row) for row in sft["test"]}
    seen = set()
    for split in ("train", "test"):
        rows = load(f"preferences_{split}.jsonl")
        modes = Counter(row["failure_mode"] for row in rows)
        assert set(modes) == FAILURE_MODES and max(modes.values()) - min(modes.values()) <= 1
        for row in rows:
            assert set(row) == PREFERENCE_FIELDS
            assert row["chosen"] != row["rejected"], row["id"]
            key = normalise(row["prompt"])
            assert key not in test_prompts, f"{row['id']} repeats an sft_test prompt"
            assert key not in seen, f"{row['id']} repeats a preference prompt"
            seen.add(key)
            if row["task"] == "json_extraction" and row["failure_mode"] != "wrong_format":
                json.loads(row["chosen"])


# ----------------------------------------------------------------------------- agents


def test_agent_tasks(agents, kb):
    categories = Counter(row["category"] for row in agents)
    assert set(categories) == {"calculation", "kb_lookup", "extraction", "multi_step"}
    by_id = {row["id"]: (position, row) for position, row in enumerate(agents)}
    last_original = max(i for i, row in enumerate(agents) if row["repeat_of"] is None)
    repeats = [(i, row) for i, row in enumerate(agents) if row["repeat_of"] is not None]
    assert 10 <= len(repeats) <= 20
    for position, row in repeats:
        assert position > last_original, f"{row['id']} comes before an original"
        source_position, source = by_id[row["repeat_of"]]
        assert source_position < position and source["repeat_of"] is None
        for field in ("question", "answer", "gold_calls", "category", "lang"):
            assert row[field] == source[field]
    originals = [row["question"] for row in agents if row["repeat_of"] is None]
    assert len(originals) == len(set(originals))
    kb_text = "\n".join(doc["text"] for doc in kb.values())
    for row in agents:
        calls = row["gold_calls"]
        for call in calls:
            assert set(call["arguments"]) == TOOLS[call["tool"]], row["id"]
        tools = [call["tool"] for call in calls]
        if row["category"] == "calculation":
            assert tools == ["calculator"]
        elif row["category"] == "kb_lookup":
            assert tools == ["search_kb"] and calls[0]["arguments"]["k"] == 3
            assert row["answer"] in kb_text
        elif row["category"] == "extraction":
            assert tools == ["extract_fields"]
            assert list(json.loads(row["answer"])) == calls[0]["arguments"]["fields"]
            assert calls[0]["arguments"]["text"] in row["question"]
        else:
            assert tools == ["search_kb", "search_kb", "calculator"]
        if tools[-1] == "calculator":
            assert arith(calls[-1]["arguments"]["expression"]) == int(row["answer"]), row["id"]


# ----------------------------------------------------------------------------- library


def test_normalize_prompt_folds_case_accents_and_punctuation():
    assert normalize_prompt("¿Cuántos  AÑOS?\n--Pasaron") == "cuantos anos pasaron"
    assert normalize_prompt("A-b") == normalize_prompt("a b")
