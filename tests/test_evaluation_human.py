"""Human-evaluation kit: the rubric, the blind sheet, and agreement on two hand-filled sheets."""

import csv
from pathlib import Path

import pytest

from lmlab.evaluation import human as he
from lmlab.core.errors import InputError
from lmlab.core.io import write_jsonl
from lmlab.core.stats import cohen_kappa

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "data" / "human_eval" / "rubric.yaml"
MODELS = ["base", "sft", "dpo"]


def test_rubric_has_four_criteria_on_a_one_to_five_scale():
    rubric = he.load_rubric(RUBRIC)
    assert rubric["scale"] == [1, 5]
    assert len(rubric["criteria"]) == 4
    for criterion in rubric["criteria"]:
        assert {1, 3, 5} <= set(criterion["anchors"])


@pytest.fixture
def kit(tmp_path):
    items = [
        {"id": f"it-{k}", "task": ("arithmetic", "kb_qa", "sentiment")[k % 3], "lang": "en",
         "instruction": f"Question {k}?", "input": "", "output": "x"}
        for k in range(9)
    ]
    items_path = tmp_path / "items.jsonl"
    write_jsonl(items_path, items)
    gens = []
    for model in MODELS:
        path = tmp_path / f"{model}.jsonl"
        write_jsonl(path, [{"id": it["id"], "prediction": f"answer of {model} to {it['id']}", "model": model,
                            "prompt_name": "structured", "context": 2048} for it in items])
        gens.append(path)
    sheet, key = tmp_path / "sheet.csv", tmp_path / "key.csv"
    he.export_sheet(items_path, MODELS, gens, RUBRIC, sheet, key, n_items=6, seed=11)
    return tmp_path, items_path, gens, sheet, key


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_sheet_is_blind_shuffled_and_keyed(kit):
    tmp_path, items_path, gens, sheet, key = kit
    rows, keys = read_csv(sheet), read_csv(key)
    assert len(rows) == len(keys) == 6 * len(MODELS)
    assert [r["code"] for r in rows] == [k["code"] for k in keys]
    assert len({r["code"] for r in rows}) == len(rows)
    header = list(rows[0])
    assert "model" not in header and all(c in header for c in ("correctness", "faithfulness", "format", "helpfulness"))
    for r in rows:
        assert all(m not in r["code"] for m in MODELS)
    # The key maps every code back to the model whose text is on the sheet.
    for r, k in zip(rows, keys):
        assert r["response"] == f"answer of {k['model']} to {k['id']}"
    # Shuffled: the models do not come in a fixed cycle; and the same seed gives the same sheet.
    order = [k["model"] for k in keys]
    assert order != [MODELS[i % 3] for i in range(len(order))]
    again = tmp_path / "again"
    he.export_sheet(items_path, MODELS, gens, RUBRIC, again / "sheet.csv", again / "key.csv", n_items=6, seed=11)
    assert (again / "sheet.csv").read_bytes() == sheet.read_bytes()


def fill(sheet, out, scores):
    rows = read_csv(sheet)
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for k, row in enumerate(rows):
            for criterion, values in scores.items():
                row[criterion] = "" if values[k] is None else str(values[k])
            writer.writerow(row)


def test_two_filled_sheets_give_weighted_kappa(kit):
    tmp_path, _, _, sheet, key = kit
    n = len(read_csv(sheet))
    first = [1 + (k * 7) % 5 for k in range(n)]
    second = [min(5, v + (k % 3 == 0)) for k, v in enumerate(first)]  # close, not equal
    opposite = [6 - v for v in first]
    scores_a = {"correctness": first, "faithfulness": first, "format": first, "helpfulness": first}
    scores_b = {"correctness": second, "faithfulness": first, "format": opposite,
                "helpfulness": [None] + second[1:]}
    fill(sheet, tmp_path / "ann_a.csv", scores_a)
    fill(sheet, tmp_path / "ann_b.csv", scores_b)
    result = he.agreement([tmp_path / "ann_a.csv", tmp_path / "ann_b.csv"], key, RUBRIC, tmp_path / "agreement.json",
                          tmp_path / "agreement.tsv")
    assert result["annotators"] == 2 and result["names"] == ["ann_a", "ann_b"]
    agreement = result["agreement"]
    # Cohen's kappa over the codes in sheet order equals the kit's.
    assert agreement["correctness"]["kappa_quadratic"] == pytest.approx(
        cohen_kappa(first, second, labels=[1, 2, 3, 4, 5], weights="quadratic"))
    assert agreement["faithfulness"]["kappa_quadratic"] == pytest.approx(1.0)
    assert agreement["format"]["kappa_quadratic"] < 0
    assert 0.5 < agreement["correctness"]["kappa_quadratic"] < 1.0
    assert agreement["helpfulness"]["n"] == n - 1  # a blank cell is a missing rating
    means = result["mean_by_model"]["faithfulness"]
    assert set(means) == set(MODELS) and sum(m["n"] for m in means.values()) == 2 * n


def test_bad_rating_is_one_line_with_file_and_line(kit):
    tmp_path, _, _, sheet, key = kit
    n = len(read_csv(sheet))
    bad = [3] * n
    bad[2] = 7
    fill(sheet, tmp_path / "bad.csv", {"correctness": bad})
    with pytest.raises(InputError, match=r"bad\.csv:4: correctness: 7 is outside the scale 1-5"):
        he.agreement([tmp_path / "bad.csv"], key, RUBRIC, tmp_path / "a.json", tmp_path / "a.tsv")
