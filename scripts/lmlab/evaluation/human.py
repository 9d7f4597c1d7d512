"""Human-evaluation kit: a rubric, a blind annotation sheet, and agreement on filled sheets.

The sheet (CSV) holds, for a stratified seeded sample of test items, every evaluated
model's response on the reference cell, one row each. Model names are replaced by codes
(H001, H002, ...) and the rows are shuffled with the seed, so an annotator cannot tell
which model wrote what or group a model's answers; the code -> (model, item) key is a
separate file that annotators do not get. Each criterion of the rubric (1-5) is a column
to fill in, plus a free comment.

Filled sheets come back through config `evaluation.human_eval.sheets`; with two annotators
the agreement is Cohen's weighted kappa (quadratic, on the 1-5 scale) per criterion, with
more, the mean pairwise kappa and Krippendorff's alpha (ordinal). Mean ratings per model
are computed through the key. `sheet_summary` is what the evaluation summary says of the kit.
"""

import csv
import itertools
import math
import random
from pathlib import Path

import yaml

from lmlab.core.errors import InputError, input_error
from lmlab.core.io import atomic_write, read_json, read_jsonl, write_json, write_tsv
from lmlab.core.stats import agreement_ci, cohen_kappa, krippendorff_alpha_ordinal
from lmlab.evaluation.design import cell_id
from lmlab.evaluation.testset import interleave

KEY_COLUMNS = ["code", "model", "id", "task", "lang", "cell"]
BASE_COLUMNS = ["code", "task", "lang", "request", "response"]


def load_rubric(path):
    """The rubric: {name, scale: [low, high], criteria: [{name, question, anchors}]}, checked."""
    with open(path, encoding="utf-8") as handle:
        rubric = yaml.safe_load(handle)
    if not isinstance(rubric, dict) or not rubric.get("criteria"):
        raise InputError(f"{path}: criteria: missing")
    low, high = rubric.get("scale", [1, 5])
    if not (isinstance(low, int) and isinstance(high, int) and low < high):
        raise InputError(f"{path}: scale: must be two increasing integers")
    names = [c.get("name") for c in rubric["criteria"]]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise InputError(f"{path}: criteria: names must be unique identifiers, got {names}")
    for c in rubric["criteria"]:
        if not c.get("question") or not isinstance(c.get("anchors"), dict):
            raise InputError(f"{path}: criteria.{c['name']}: needs a question and anchors")
    rubric["scale"] = [low, high]
    return rubric


def sheet_columns(rubric):
    return BASE_COLUMNS + [c["name"] for c in rubric["criteria"]] + ["comment"]


def sample_items(rows, n_items, seed):
    """Up to `n_items` test items, spread over tasks in turn, picked with the seed."""
    rng = random.Random(f"{seed}:human_eval")
    by_task = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    queues = []
    for task in sorted(by_task):
        queue = sorted(by_task[task], key=lambda r: r["id"])
        rng.shuffle(queue)
        queues.append(queue)
    return interleave(queues, n_items)


def request_text(row):
    """The request as a reader sees it: the instruction, then the input when there is one."""
    text = row["instruction"].strip()
    if row.get("input", "").strip():
        text += "\n\n" + row["input"].strip()
    return text


def _write_csv(path, rows, columns):
    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def export_sheet(items_path, models, gen_paths, rubric_path, out_sheet, out_key, *, n_items, seed):
    """Rule evaluation_human_sheet: the blind sheet (CSV) and its key (CSV, kept apart)."""
    rubric = load_rubric(rubric_path)
    items = sample_items(read_jsonl(items_path), n_items, seed)
    gens = {model: {r["id"]: r for r in read_jsonl(path)} for model, path in zip(models, gen_paths)}
    entries = []
    for row in items:
        for model in models:
            gen = gens[model][row["id"]]
            entries.append({"row": row, "model": model, "gen": gen})
    rng = random.Random(f"{seed}:human_eval:order")
    rng.shuffle(entries)
    sheet, key = [], []
    width = max(3, len(str(len(entries))))
    for k, entry in enumerate(entries, start=1):
        code = f"H{k:0{width}d}"
        row, gen = entry["row"], entry["gen"]
        sheet.append({"code": code, "task": row["task"], "lang": row["lang"], "request": request_text(row),
                      "response": gen["prediction"]})
        cell = {"model": gen["model"], "prompt": gen["prompt_name"], "context": gen["context"]}
        key.append({"code": code, "model": entry["model"], "id": row["id"], "task": row["task"],
                    "lang": row["lang"], "cell": cell_id(cell)})
    _write_csv(out_sheet, sheet, sheet_columns(rubric))
    _write_csv(out_key, key, KEY_COLUMNS)
    return sheet, key


def read_key(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["code"]: row for row in csv.DictReader(handle)}


def read_sheet(path, rubric, codes):
    """{code: {criterion: int}} of one filled sheet; blanks are missing ratings.

    One-line InputError for a missing column, an unknown or repeated code, or a rating that
    is not an integer on the rubric's scale.
    """
    low, high = rubric["scale"]
    criteria = [c["name"] for c in rubric["criteria"]]
    ratings = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ["code", *criteria] if c not in (reader.fieldnames or [])]
        if missing:
            raise input_error(path, 1, "header", f"missing columns {missing}")
        for line, row in enumerate(reader, start=2):
            code = (row["code"] or "").strip()
            if code not in codes:
                raise input_error(path, line, "code", f"unknown code {code!r}")
            if code in ratings:
                raise input_error(path, line, "code", f"{code} rated twice")
            ratings[code] = {}
            for name in criteria:
                value = (row[name] or "").strip()
                if not value:
                    continue
                try:
                    score = int(value)
                except ValueError:
                    raise input_error(path, line, name, f"{value!r} is not an integer") from None
                if not low <= score <= high:
                    raise input_error(path, line, name, f"{score} is outside the scale {low}-{high}")
                ratings[code][name] = score
    return ratings


def _finite(value):
    """NaN (kappa with no chance disagreement) becomes None, so the JSON stays valid."""
    return None if isinstance(value, float) and math.isnan(value) else value


def annotator_name(path, index):
    stem = Path(path).stem
    return stem or f"annotator{index + 1}"


def agreement(sheet_paths, key_path, rubric_path, out_json, out_tsv):
    """Rule evaluation_human_agreement: agreement per criterion and mean ratings per model."""
    rubric = load_rubric(rubric_path)
    low, high = rubric["scale"]
    labels = list(range(low, high + 1))
    key = read_key(key_path)
    sheets = {annotator_name(p, i): read_sheet(p, rubric, key) for i, p in enumerate(sheet_paths)}
    names = list(sheets)
    result = {"annotators": len(names), "names": names, "scale": [low, high], "criteria": {}, "agreement": None}
    per_criterion = {}
    for criterion in (c["name"] for c in rubric["criteria"]):
        entry = {}
        if len(names) >= 2:
            pairs = []
            for x, y in itertools.combinations(names, 2):
                codes = sorted(c for c in key if criterion in sheets[x].get(c, {}) and criterion in sheets[y].get(c, {}))
                if not codes:
                    continue
                a = [sheets[x][c][criterion] for c in codes]
                b = [sheets[y][c][criterion] for c in codes]
                # Interval over rated items (percentile bootstrap), so a kappa reads with its n.
                kappa_ci = agreement_ci(
                    lambda units: cohen_kappa([u[0] for u in units], [u[1] for u in units], labels=labels,
                                              weights="quadratic"), list(zip(a, b)), n_resamples=1000, seed=0)
                pairs.append(
                    {
                        "a": x,
                        "b": y,
                        "n": len(codes),
                        "kappa_quadratic": _finite(cohen_kappa(a, b, labels=labels, weights="quadratic")),
                        "kappa_quadratic_low": _finite(kappa_ci["low"]),
                        "kappa_quadratic_high": _finite(kappa_ci["high"]),
                        "kappa_linear": _finite(cohen_kappa(a, b, labels=labels, weights="linear")),
                        "exact_agreement": sum(u == v for u, v in zip(a, b)) / len(codes),
                    }
                )
            entry["pairs"] = pairs
            kappas = [p["kappa_quadratic"] for p in pairs if p["kappa_quadratic"] is not None]
            entry["kappa_quadratic"] = sum(kappas) / len(kappas) if kappas else None
            entry["n"] = min((p["n"] for p in pairs), default=0)
            units = [[sheets[n].get(code, {}).get(criterion) for n in names] for code in sorted(key)]
            entry["krippendorff_alpha_ordinal"] = _finite(krippendorff_alpha_ordinal(units))
            alpha_ci = agreement_ci(krippendorff_alpha_ordinal, units, n_resamples=1000, seed=0)
            entry["krippendorff_alpha_low"] = _finite(alpha_ci["low"])
            entry["krippendorff_alpha_high"] = _finite(alpha_ci["high"])
            entry["krippendorff_alpha_units"] = sum(sum(v is not None for v in unit) >= 2 for unit in units)
        means = {}
        for model in sorted({k["model"] for k in key.values()}):
            values = [sheets[n][code][criterion] for n in names for code, k in key.items()
                      if k["model"] == model and criterion in sheets[n].get(code, {})]
            if values:
                means[model] = {"mean": sum(values) / len(values), "n": len(values)}
        entry["mean_by_model"] = means
        per_criterion[criterion] = entry
    result["criteria"] = per_criterion
    if len(names) >= 2:
        result["agreement"] = {c: {k: e.get(k) for k in ("kappa_quadratic", "krippendorff_alpha_ordinal",
                                                         "krippendorff_alpha_low", "krippendorff_alpha_high",
                                                         "krippendorff_alpha_units", "n")}
                               for c, e in per_criterion.items()}
    result["mean_by_model"] = {c: e["mean_by_model"] for c, e in per_criterion.items()}
    rows = []
    for criterion, entry in per_criterion.items():
        for pair in entry.get("pairs", []):
            interval = (f"[{pair['kappa_quadratic_low']:.3f}, {pair['kappa_quadratic_high']:.3f}]"
                        if pair["kappa_quadratic_low"] is not None else "")
            rows.append({"criterion": criterion, "a": pair["a"], "b": pair["b"],
                         "kappa_quadratic": pair["kappa_quadratic"], "kappa_quadratic_interval": interval,
                         "n": pair["n"], "kappa_linear": pair["kappa_linear"],
                         "exact_agreement": pair["exact_agreement"]})
    write_tsv(out_tsv, rows, ["criterion", "a", "b", "kappa_quadratic", "kappa_quadratic_interval", "n",
                              "kappa_linear", "exact_agreement"])
    write_json(out_json, result)
    return result


def sheet_summary(agreement_path, key_path):
    """What the paper says about the kit: the sheet's size, and agreement and mean ratings
    when filled sheets were read back (either path may be None)."""
    summary = {"sheet_rows": 0, "annotators": 0, "agreement": None, "mean_by_model": None}
    if key_path:
        key = read_key(key_path)
        summary["sheet_rows"] = len(key)
        summary["sheet_items"] = len({row["id"] for row in key.values()})
    if agreement_path:
        filled = read_json(agreement_path)
        summary["annotators"] = filled["annotators"]
        summary["agreement"] = filled.get("agreement")
        summary["mean_by_model"] = filled.get("mean_by_model")
    return summary
