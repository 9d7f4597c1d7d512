"""Provenance of the paper: which rule wrote each artifact, and the check that everything the
paper depends on is still what was recorded.

`verify` re-hashes (files and folders alike, lmlab.core.io.sha256_tree):
- every artifact of the paper (figures, tables) and its source file, and paper.html itself;
- every output of every provenance record, folders (model and adapter folders) included;
- every raw input against the data manifest's sha256;
and checks the chain: each input a record read has the hash its producer recorded.
It returns one line per problem, `path: recorded X, now Y, written by rule R`.

Run it on a copy of a run's results as a reviewer would:
`PYTHONPATH=scripts python -m lmlab.paper.verify results/<run_name>/paper/provenance.json`
(or `make verify [RUN=<run_name>]`).
"""

import sys
from pathlib import Path

from lmlab.core.io import read_json, sha256_file, sha256_tree


def producing_record(path, records):
    """The provenance record whose outputs contain `path` (a file or a folder above it)."""
    path = Path(path)
    for record_path, record in records.items():
        for out in record["outputs"]:
            if path == Path(out) or Path(out) in path.parents:
                return record_path, record
    return None, None


def build_provenance(report_dir, sources, record_paths):
    records = {str(p): read_json(p) for p in record_paths}
    artifacts = {}
    for rel, source in sorted(sources.items()):
        record_path, record = producing_record(source, records)
        artifacts[rel] = {
            "sha256": sha256_file(Path(report_dir) / rel),
            "source": source,
            "source_sha256": sha256_file(source) if Path(source).is_file() else None,
            "rule": record["rule"] if record else None,
            "record": record_path,
        }
    return {"artifacts": artifacts, "records": records}


def _short(digest):
    return digest[:12] if digest else "none"


def _check(path, recorded, who, problems):
    """Append `path: recorded X, now Y, <who>` when the hash on disk differs; True if checked."""
    path = Path(path)
    if not path.exists():
        problems.append(f"{path}: recorded {_short(recorded)}, now missing, {who}")
        return True
    now = sha256_tree(path)
    if now != recorded:
        problems.append(f"{path}: recorded {_short(recorded)}, now {_short(now)}, {who}")
    return True


def chain(provenance):
    """(producer/consumer pairs, [problem lines]): every input of a record that another record
    wrote, compared with the hash its producer recorded (what each rule read is what its
    producer wrote)."""
    produced = {}
    for record in provenance["records"].values():
        for out, digest in record["outputs"].items():
            produced[out] = (digest, record["rule"])
    pairs, problems = 0, []
    for record in provenance["records"].values():
        for inp, digest in sorted(record["inputs"].items()):
            if inp in produced:
                pairs += 1
                if produced[inp][0] != digest:
                    problems.append(f"{inp}: rule {record['rule']} read {_short(digest)}, rule {produced[inp][1]} "
                                    f"wrote {_short(produced[inp][0])}")
    return pairs, problems


def verify(provenance_path, report_dir=None, manifest_path=None):
    """(problems, checked): every problem as one line, and how many hashes were compared."""
    provenance = read_json(provenance_path)
    report_dir = Path(report_dir or Path(provenance_path).parent)
    problems, checked = [], 0
    for rel, art in sorted(provenance["artifacts"].items()):
        checked += _check(report_dir / rel, art["sha256"], "rendered into the paper", problems)
        if art.get("source_sha256"):
            checked += _check(art["source"], art["source_sha256"], f"written by rule {art['rule']}", problems)
    paper = provenance.get("paper")
    if paper:
        checked += _check(report_dir / "paper.html", paper["sha256"], "rendered by rule paper", problems)
    for record in provenance["records"].values():
        for out, digest in sorted(record["outputs"].items()):
            checked += _check(out, digest, f"written by rule {record['rule']}", problems)
    pairs, broken = chain(provenance)
    checked += pairs
    problems += broken
    if manifest_path:
        for name, entry in sorted(read_json(manifest_path).items()):
            if isinstance(entry, dict) and entry.get("file") and entry.get("sha256"):
                checked += _check(entry["file"], entry["sha256"], f"raw input {name} in the data manifest", problems)
    return problems, checked


def report(problems, checked, provenance_path, pairs=None):
    """The lines a reviewer reads: one per problem, then the verdict (with how many
    producer/consumer pairs agree, `pairs` = (agreeing, all))."""
    lines = list(problems)
    chain_text = f"; {pairs[0]} of {pairs[1]} producer/consumer hash pairs agree" if pairs else ""
    if problems:
        lines.append(f"verify: FAILED, {len(problems)} of {checked} hashes from {provenance_path} differ{chain_text}")
    else:
        lines.append(f"verify: OK, all {checked} hashes from {provenance_path} match the files on disk{chain_text}")
    return "\n".join(lines)


def main(argv=None):
    """`python -m lmlab.paper.verify <root>/paper/provenance.json [manifest.json]`, run where the
    results are; the manifest defaults to <root>/data/manifest.json of the same run."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m lmlab.paper.verify <root>/paper/provenance.json [manifest.json]", file=sys.stderr)
        return 2
    path = argv[0]
    manifest = argv[1] if len(argv) > 1 else str(Path(path).parents[1] / "data" / "manifest.json")
    problems, checked = verify(path, manifest_path=manifest)
    pairs, broken = chain(read_json(path))
    print(report(problems, checked, path, (pairs - len(broken), pairs)))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
