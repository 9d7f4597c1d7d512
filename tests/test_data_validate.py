"""Bad input: each case gives one line `file:line: field: problem` and writes nothing."""

import json

import pytest

from lmlab.data.validate import validate_all
from lmlab.core.errors import InputError


def sft_row(i, **over):
    row = {
        "id": f"r{i}",
        "task": "arithmetic",
        "lang": "en",
        "instruction": f"What is {i} plus {i}?",
        "input": "",
        "output": str(2 * i),
        "meta": {"answer": str(2 * i), "expression": f"{i}+{i}", "should_refuse": False},
    }
    row.update(over)
    return row


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run(tmp_path, train_rows=None, test_text=None):
    train = write(tmp_path / "train.jsonl", train_rows or [sft_row(i) for i in range(3)])
    test = tmp_path / "test.jsonl"
    if test_text is None:
        write(test, [sft_row(i) for i in range(10, 12)])
    else:
        test.write_bytes(test_text if isinstance(test_text, bytes) else test_text.encode())
    out = tmp_path / "out"
    datasets = {"sft_train": (train, "sft"), "sft_test": (test, "sft")}
    return validate_all(datasets, out), out


def error_of(tmp_path, **kwargs):
    with pytest.raises(InputError) as info:
        run(tmp_path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "the error must be one line"
    assert not (tmp_path / "out").exists(), "bad input must leave no output behind"
    return message


def test_valid_files_write_outputs_and_manifest(tmp_path):
    manifests, out = run(tmp_path)
    assert (out / "sft_train.jsonl").exists() and (out / "manifest.json").exists()
    assert manifests["sft_train"]["rows"] == 3
    assert manifests["sft_train"]["per_task"] == {"arithmetic": 3}
    assert len(manifests["sft_test"]["sha256"]) == 64


def test_malformed_json(tmp_path):
    good = json.dumps(sft_row(10))
    msg = error_of(tmp_path, test_text=good + "\n{not json\n")
    assert msg.startswith(f"{tmp_path / 'test.jsonl'}:2: json: malformed JSON")


def test_missing_field(tmp_path):
    row = sft_row(10)
    del row["output"]
    msg = error_of(tmp_path, test_text=json.dumps(row) + "\n")
    assert msg.endswith(":1: output: missing")


def test_empty_field(tmp_path):
    msg = error_of(tmp_path, test_text=json.dumps(sft_row(10, instruction="   ")) + "\n")
    assert msg.endswith(":1: instruction: is empty")


def test_mistyped_field(tmp_path):
    msg = error_of(tmp_path, test_text=json.dumps(sft_row(10, output=20)) + "\n")
    assert msg.endswith(":1: output: expected string, got int")


def test_unknown_task(tmp_path):
    msg = error_of(tmp_path, test_text=json.dumps(sft_row(10, task="poetry")) + "\n")
    assert ":1: task: 'poetry' is not one of" in msg


def test_duplicate_ids(tmp_path):
    text = json.dumps(sft_row(10)) + "\n" + json.dumps(sft_row(11, id="r10")) + "\n"
    msg = error_of(tmp_path, test_text=text)
    assert msg.endswith(":2: id: duplicate id 'r10' (first on line 1)")


def test_empty_file(tmp_path):
    msg = error_of(tmp_path, test_text="\n\n")
    assert msg == f"{tmp_path / 'test.jsonl'}: file: is empty"


def test_invalid_utf8(tmp_path):
    good = json.dumps(sft_row(10)).encode()
    msg = error_of(tmp_path, test_text=good + b"\n" + b'{"id": "\xff\xfe"}\n')
    assert ":2: encoding: invalid UTF-8" in msg


def test_exact_train_test_overlap(tmp_path):
    msg = error_of(tmp_path, test_text=json.dumps(sft_row(1, id="t1")) + "\n")
    assert "test.jsonl:1: instruction+input: overlaps" in msg and "train.jsonl:2" in msg


def test_normalised_train_test_overlap(tmp_path):
    # Same text up to case, accents and punctuation is still a leak.
    row = sft_row(1, id="t1", instruction="  WHAT is 1 plus 1 ?? ")
    msg = error_of(tmp_path, test_text=json.dumps(row) + "\n")
    assert "instruction+input: overlaps" in msg


def test_missing_file(tmp_path):
    train = write(tmp_path / "train.jsonl", [sft_row(1)])
    with pytest.raises(InputError, match="does not exist"):
        validate_all({"sft_train": (train, "sft"), "sft_test": (tmp_path / "nope.jsonl", "sft")}, tmp_path / "out")


def test_chat_messages_format_is_converted(tmp_path):
    row = {
        "id": "m1",
        "task": "kb_qa",
        "lang": "es",
        "messages": [
            {"role": "user", "content": "¿Dónde está la empresa Zorvex?"},
            {"role": "assistant", "content": "En Lumbra."},
        ],
    }
    manifests, out = run(tmp_path, train_rows=[row, sft_row(1)])
    converted = json.loads((out / "sft_train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert converted["instruction"] == "¿Dónde está la empresa Zorvex?"
    assert converted["output"] == "En Lumbra." and converted["input"] == ""
    assert "messages" not in converted  # one user turn and its answer: the flat row says it all
    assert manifests["sft_train"]["formats"] == {"instruction": 1, "messages": 1}


def test_preferences_failure_mode_checked(tmp_path):
    pref = {"id": "p1", "task": "kb_qa", "lang": "en", "prompt": "Q?", "chosen": "A", "rejected": "B", "failure_mode": "rude"}
    path = write(tmp_path / "prefs.jsonl", [pref])
    with pytest.raises(InputError, match=r"prefs.jsonl:1: failure_mode: 'rude' is not one of"):
        validate_all({"preferences_test": (path, "preferences")}, tmp_path / "out")
