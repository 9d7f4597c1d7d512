"""Two runs side by side: which outputs differ, and every number that differs.

    PYTHONPATH=scripts python -m lmlab.paper.compare results/<run A> results/<run B>
    (or `make compare A=results/<run A> B=results/<run B>`)

Outputs are matched by their path below each run's root, from the runs' provenance records
(`<root>/provenance/*.json`, each with its `results_root` and the sha256 of every output).
Wall-clock measurements are kept apart from results (`is_timing`): they are listed as
timings and never counted as differences. For every other output that differs, each JSON
and TSV file is compared number by number (`file: field: A -> B`); any other file (weights,
figures) is named with its two hashes.
"""

import csv
import json
import math
import sys
from pathlib import Path

from lmlab.core.io import read_json

# Path components and files that hold wall-clock measurements, or that list their hashes
# (records, the provenance appendix, the paper that renders the cost section). Everything
# else a run writes is byte-identical across two runs of one config on one machine.
TIMING_DIRS = {"logs", "benchmarks", "timing", "provenance", "cost"}
TIMING_FILES = {"paper/paper.html", "paper/provenance.json", "paper/snakemake-report.zip"}


def is_timing(rel_path):
    """True for a path (relative to a run's root) that holds timings, not results: a file in
    a timing folder, or such a folder itself (a rule's folder output, like paper/timing)."""
    rel = Path(rel_path).as_posix()
    return rel in TIMING_FILES or bool(TIMING_DIRS & set(Path(rel).parts))


def recorded_outputs(root):
    """({path relative to the run root: sha256} over every provenance record of a run, the
    root the records name)."""
    outputs, recorded_roots = {}, set()
    for record_path in sorted(Path(root, "provenance").glob("*.json")):
        record = read_json(record_path)
        recorded_root = Path(record.get("results_root") or root)
        recorded_roots.add(str(recorded_root))
        for out, digest in record["outputs"].items():
            try:
                rel = Path(out).relative_to(recorded_root)
            except ValueError:  # an output outside the run root (none in this workflow)
                rel = Path(out)
            outputs[rel.as_posix()] = digest
    return outputs, (recorded_roots.pop() if len(recorded_roots) == 1 else None)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _tsv_cells(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    for line, row in enumerate(body, start=2):
        key = row[0] if row else ""
        for column, value in zip(header, row):
            yield f"line {line} ({key}): {column}", value


def _relocated(values, root):
    """Values with the run's root replaced by <root>: a path under each run's own root names
    the same artifact in both runs."""
    if not root:
        return values
    return {k: v.replace(root, "<root>") if isinstance(v, str) else v for k, v in values.items()}


def value_differences(path_a, path_b, root_a=None, root_b=None):
    """['field: A -> B'] for a JSON, JSONL or TSV file; None for a file of another kind.
    Strings are compared with each run's root replaced by <root>."""
    suffix = Path(path_a).suffix
    if suffix == ".json":
        a, b = dict(_flatten(read_json(path_a))), dict(_flatten(read_json(path_b)))
    elif suffix == ".jsonl":
        def rows(p):
            lines = Path(p).read_text(encoding="utf-8").splitlines()
            return dict(_flatten([json.loads(x) for x in lines if x.strip()]))
        a, b = rows(path_a), rows(path_b)
    elif suffix == ".tsv":
        a, b = dict(_tsv_cells(path_a)), dict(_tsv_cells(path_b))
    else:
        return None
    a, b = _relocated(a, root_a), _relocated(b, root_b)
    lines = [f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}"
             for k in dict.fromkeys([*a, *b]) if not _same(a.get(k), b.get(k))]
    return lines


def compare_runs(root_a, root_b):
    """{"differ": [lines], "timings": [rel paths], "relocated": [rel paths whose bytes differ
    only by the run root], "only_a": [...], "only_b": [...], "same": n}."""
    (out_a, rec_a), (out_b, rec_b) = recorded_outputs(root_a), recorded_outputs(root_b)
    relocate = rec_a != rec_b  # the same root: any byte that differs is a difference
    result = {"differ": [], "timings": [], "relocated": [], "only_a": sorted(set(out_a) - set(out_b)),
              "only_b": sorted(set(out_b) - set(out_a)), "same": 0}
    for rel in sorted(set(out_a) & set(out_b)):
        if out_a[rel] == out_b[rel]:
            result["same"] += 1
        elif is_timing(rel):
            result["timings"].append(rel)
        else:
            path_a, path_b = Path(root_a, rel), Path(root_b, rel)
            values = (value_differences(path_a, path_b, *((rec_a, rec_b) if relocate else (None, None)))
                      if path_a.is_file() and path_b.is_file() else None)
            if values is None:
                result["differ"].append(f"{rel}: sha256 {out_a[rel][:12]} -> {out_b[rel][:12]}")
            elif values:
                result["differ"] += [f"{rel}: {line}" for line in values]
            elif relocate:
                result["relocated"].append(rel)
            else:
                result["differ"].append(f"{rel}: bytes differ, values equal")
    return result


def report(result, root_a, root_b):
    lines = list(result["differ"])
    lines += [f"{rel}: only in {root_a}" for rel in result["only_a"]]
    lines += [f"{rel}: only in {root_b}" for rel in result["only_b"]]
    problems = len(result["differ"]) + len(result["only_a"]) + len(result["only_b"])
    timings = f"; {len(result['timings'])} timing files differ (wall clock, not compared)" if result["timings"] else ""
    relocated = (f"; {len(result['relocated'])} differ only in the run root they name" if result["relocated"]
                 else "")
    verdict = "the same results" if not problems else f"{problems} differences"
    lines.append(f"compare: {root_a} vs {root_b}: {verdict}, {result['same']} outputs identical{relocated}{timings}")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m lmlab.paper.compare <run root A> <run root B>", file=sys.stderr)
        return 2
    result = compare_runs(*argv)
    print(report(result, *argv))
    return 1 if result["differ"] or result["only_a"] or result["only_b"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
