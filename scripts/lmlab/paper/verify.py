"""Provenance of the paper: which rule wrote each artifact, and the check that every hash the
paper lists still matches the files on disk."""

from pathlib import Path

from lmlab.core.io import read_json, sha256_file


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


def verify(provenance_path, report_dir=None):
    """Recompute every hash listed in provenance.json; return the list of mismatches."""
    provenance = read_json(provenance_path)
    report_dir = Path(report_dir or Path(provenance_path).parent)
    problems = []
    for rel, art in provenance["artifacts"].items():
        path = report_dir / rel
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != art["sha256"]:
            problems.append(f"{path}: sha256 changed since the paper was rendered")
        if art.get("source_sha256") and Path(art["source"]).exists():
            if sha256_file(art["source"]) != art["source_sha256"]:
                problems.append(f"{art['source']}: sha256 changed since the paper was rendered")
    paper = provenance.get("paper")
    if paper and sha256_file(report_dir / "paper.html") != paper["sha256"]:
        problems.append(f"{report_dir / 'paper.html'}: sha256 changed since it was rendered")
    for record_path, record in provenance["records"].items():
        for out, digest in record["outputs"].items():
            if Path(out).is_file() and sha256_file(out) != digest:
                problems.append(f"{out}: sha256 changed since rule {record['rule']} wrote it")
    return problems
