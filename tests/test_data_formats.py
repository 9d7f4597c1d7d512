"""Accepted input formats and sources, the optional fields' defaults, and the rules that reject
degenerate rows: each through lmlab.data.validate.validate_all, as the validation rule runs it."""

import json

import pytest

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl
from lmlab.data.formats import detect_lang
from lmlab.data.validate import validate_all

# The seed notebook's rows, exactly as it writes them: instruction, input, output and nothing else.
SEED_ROWS = [
    {"instruction": "Resume el siguiente texto", "input": "La empresa Lumbra abrió una nueva fábrica en Sevilla "
     "el año pasado y contrató a doscientas personas de la zona.", "output": "Lumbra abrió una fábrica en Sevilla "
     "y contrató a doscientas personas."},
    {"instruction": "Traduce al inglés", "input": "El gato duerme en la ventana.", "output": "The cat sleeps on the window."},
    {"instruction": "¿Cuál es la capital de Francia?", "input": "", "output": "La capital de Francia es París."},
]
ALPACA_ROWS = [
    {"instruction": "Give three tips for staying healthy in the winter.", "input": "", "output": "Eat well, sleep enough and exercise."},
    {"instruction": "Summarise the text.", "input": "The river flooded the town twice this spring.",
     "output": "The town flooded twice."},
]


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def validate(tmp_path, rows, kind="sft", name="sft_train", writer=write, filename="in.jsonl"):
    source = writer(tmp_path / filename, rows)
    out = tmp_path / "out"
    manifests = validate_all({name: (source, kind)}, out)
    return manifests[name], read_jsonl(out / f"{name}.jsonl")


def rejected(tmp_path, rows, kind="sft", name="sft_train"):
    with pytest.raises(InputError) as info:
        validate(tmp_path, rows, kind, name)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "in.jsonl"))
    assert not (tmp_path / "out").exists(), "a rejected file leaves no output behind"
    return message


# ----------------------------------------------------------------------------- formats


def test_seed_notebook_rows_validate_with_defaults(tmp_path):
    manifest, rows = validate(tmp_path, SEED_ROWS)
    assert [r["id"] for r in rows] == ["in:1", "in:2", "in:3"]
    assert {r["task"] for r in rows} == {"general"} and all(r["meta"] == {} for r in rows)
    assert [r["lang"] for r in rows] == ["es", "es", "es"]
    assert rows[0]["instruction"] == SEED_ROWS[0]["instruction"] and rows[0]["output"] == SEED_ROWS[0]["output"]
    assert manifest["formats"] == {"instruction": 3}
    assert manifest["defaulted"] == {"id": 3, "lang": 3, "meta": 3, "task": 3}
    assert manifest["source"] == "jsonl" and len(manifest["sha256"]) == 64


def test_alpaca_rows_without_input_field(tmp_path):
    rows = [dict(ALPACA_ROWS[0]), dict(ALPACA_ROWS[1])]
    del rows[0]["input"]
    manifest, out = validate(tmp_path, rows)
    assert out[0]["input"] == "" and [r["lang"] for r in out] == ["en", "en"]
    assert manifest["defaulted"]["input"] == 1


def test_multi_turn_messages_stay_multi_turn(tmp_path):
    turns = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And times 3?"},
        {"role": "assistant", "content": "12"},
    ]
    manifest, rows = validate(tmp_path, [{"messages": turns}])
    assert rows[0]["messages"] == turns
    assert rows[0]["output"] == "12" and rows[0]["instruction"].endswith("And times 3?")
    assert manifest["formats"] == {"messages": 1}


def test_sharegpt_conversations(tmp_path):
    row = {"conversations": [{"from": "human", "value": "Name a primary colour."}, {"from": "gpt", "value": "Red."},
                             {"from": "human", "value": "Another one?"}, {"from": "gpt", "value": "Blue."}]}
    manifest, rows = validate(tmp_path, [row])
    assert [t["role"] for t in rows[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    assert rows[0]["output"] == "Blue." and "conversations" not in rows[0]
    assert manifest["formats"] == {"sharegpt": 1}


def test_preferences_as_strings_and_in_trl_conversational_forms(tmp_path):
    rows = [
        {"prompt": "What is 2 + 3?", "chosen": "5", "rejected": "6"},
        {"prompt": [{"role": "user", "content": "Capital of Peru?"}],
         "chosen": [{"role": "assistant", "content": "Lima."}], "rejected": [{"role": "assistant", "content": "Cusco."}]},
        {"chosen": [{"role": "user", "content": "Colour of the sky?"}, {"role": "assistant", "content": "Blue."}],
         "rejected": [{"role": "user", "content": "Colour of the sky?"}, {"role": "assistant", "content": "Green."}]},
    ]
    manifest, out = validate(tmp_path, rows, kind="preferences", name="preferences_train")
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in out] == [
        ("What is 2 + 3?", "5", "6"), ("Capital of Peru?", "Lima.", "Cusco."), ("Colour of the sky?", "Blue.", "Green.")]
    assert {r["failure_mode"] for r in out} == {"unlabelled"} and {r["task"] for r in out} == {"general"}
    assert manifest["formats"] == {"conversational": 2, "strings": 1}


def test_language_guess_is_und_when_unsure():
    assert detect_lang("The cat is on the mat and it is asleep.") == "en"
    assert detect_lang("¿Dónde está el gato? Está en la ventana.") == "es"
    assert detect_lang("42") == "und" and detect_lang("Zorvex Lumbra") == "und"


def test_language_guess_agrees_with_the_committed_data():
    rows = read_jsonl("data/raw/sft_validation.jsonl")
    agree = sum(detect_lang(r["instruction"] + "\n" + r["input"]) == r["lang"] for r in rows)
    assert agree / len(rows) > 0.95


# ----------------------------------------------------------------------------- sources


def write_parquet(path, rows):
    from datasets import Dataset

    Dataset.from_list(rows).to_parquet(str(path))
    return path


def write_arrow(path, rows):
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def save_to_disk(path, rows):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(rows), "test": Dataset.from_list(rows[:1])}).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("writer,filename,source", [(write_parquet, "in.parquet", "parquet"), (write_arrow, "in.arrow", "arrow")])
def test_table_files(tmp_path, writer, filename, source):
    manifest, rows = validate(tmp_path, ALPACA_ROWS, writer=writer, filename=filename)
    assert [r["output"] for r in rows] == [r["output"] for r in ALPACA_ROWS]
    assert manifest["source"] == source and len(manifest["sha256"]) == 64 and manifest["rows"] == 2


def test_table_rows_are_numbered_in_errors(tmp_path):
    rows = [dict(ALPACA_ROWS[0]), dict(ALPACA_ROWS[1], output="   ")]
    with pytest.raises(InputError, match=r"in.parquet:2: output: is empty"):
        validate(tmp_path, rows, writer=write_parquet, filename="in.parquet")


def test_save_to_disk_folder_needs_its_split(tmp_path):
    folder = save_to_disk(tmp_path / "ds", ALPACA_ROWS)
    with pytest.raises(InputError, match=r"ds: split: the folder holds splits \['test', 'train'\]"):
        validate_all({"sft_train": (str(folder), "sft")}, tmp_path / "out")
    manifests = validate_all({"sft_train": ({"path": str(folder), "split": "train"}, "sft")}, tmp_path / "out")
    assert manifests["sft_train"]["source"] == "save_to_disk" and manifests["sft_train"]["split"] == "train"
    assert manifests["sft_train"]["rows"] == 2


def test_hub_dataset_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = {"hub": "someone/data", "split": "train", "revision": "abc123"}
    with pytest.raises(InputError, match=r"^hub:someone/data@abc123/train: hub: the hub is offline"):
        validate_all({"sft_train": (entry, "sft")}, tmp_path / "out")


# ----------------------------------------------------------------------------- rejection rules

CASES = [
    ({"instruction": "Hi", "input": "", "output": "?!"}, "sft", ":1: output: has no letter or digit (no signal"),
    ({"instruction": "...", "output": "An answer."}, "sft", ":1: instruction: has no letter or digit"),
    ({"instruction": "Repeat: hello world", "output": "repeat hello, world!"}, "sft",
     ":1: output: repeats the prompt once normalised (no training signal)"),
    ({"instruction": "Copy it.", "input": "The sky is blue.", "output": "the sky is blue"}, "sft",
     ":1: output: repeats the prompt once normalised"),
    ({"instruction": "Say caf\ufffd", "output": "Caf\ufffd"}, "sft", ":1: instruction: contains U+FFFD"),
    ({"prompt": "Q?", "chosen": "Yes  it is.", "rejected": "Yes it is. "}, "preferences",
     ":1: rejected: same as chosen up to whitespace (no preference signal)"),
    ({"foo": "bar"}, "sft", ":1: format: no instruction/output, messages or conversations field"),
    ({"messages": []}, "sft", ":1: messages: must be a non-empty array"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "sft", ":1: messages[0].role: 'bot' is not one of"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}, "sft",
     ":1: messages[0].content: is empty"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}, "sft",
     ":1: messages[1].role: a system turn may only come first"),
    ({"messages": [{"role": "assistant", "content": "a"}]}, "sft", ":1: messages[0].role: expected a user turn"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "sft",
     ":1: messages[1].role: expected a assistant turn"),
    ({"messages": [{"role": "user", "content": "Hello there"}]}, "sft", ":1: messages: the last turn must be the assistant's answer"),
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": 3}]}, "sft",
     ":1: conversations[1].value: expected string, got int"),
    ({"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "A"}], "rejected": "B"},
     "preferences", ":1: rejected: expected a list of messages"),
    ({"chosen": [{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A"}],
      "rejected": [{"role": "user", "content": "Q2?"}, {"role": "assistant", "content": "B"}]}, "preferences",
     ":1: rejected: the turns before the answer differ from chosen's (implicit prompt)"),
    ({"instruction": "Q?", "output": "A.", "lang": "fr"}, "sft", ":1: lang: 'fr' is not one of en, es, und"),
]


@pytest.mark.parametrize("row,kind,expected", CASES, ids=[c[2].split(": ")[1] + str(i) for i, c in enumerate(CASES)])
def test_rejection_rule(tmp_path, row, kind, expected):
    name = "sft_train" if kind == "sft" else "preferences_train"
    message = rejected(tmp_path, [row], kind, name)
    assert expected in message, message


def test_duplicate_row_after_normalisation(tmp_path):
    rows = [{"instruction": "Name a fruit.", "output": "Apple."}, {"instruction": "name a FRUIT", "output": "apple"}]
    message = rejected(tmp_path, rows)
    assert message.endswith(":2: instruction+input: same prompt and output as line 1 once normalised (a duplicate row)")


def test_duplicate_pair(tmp_path):
    rows = [{"prompt": "Q?", "chosen": "A", "rejected": "B"}, {"prompt": "q", "chosen": "A", "rejected": "B"}]
    message = rejected(tmp_path, rows, "preferences", "preferences_train")
    assert message.endswith(":2: prompt: same prompt, chosen and rejected as line 1 once normalised (a duplicate row)")


def test_evaluation_file_needs_task_labels(tmp_path):
    message = rejected(tmp_path, SEED_ROWS, name="sft_test")
    assert message.endswith(":1: task: missing: the evaluation scores each sft_test item by its task family, one of "
                            "json_extraction, arithmetic, sentiment, summarization, kb_qa, refusal, long_context_qa")


def test_evaluation_file_needs_the_metric_meta(tmp_path):
    row = {"instruction": "Where is Zorvex?", "output": "In Lumbra.", "task": "kb_qa"}
    assert rejected(tmp_path, [row], name="sft_test").endswith(":1: meta.answer: missing: the kb_qa metric reads it")
