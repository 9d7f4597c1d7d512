"""Regenerate lmlab's committed raw data: `python scripts/generate_data.py --seed 1234 --out data/raw`.

Thin CLI over `lmlab.data.generate`; with `--datasheet data/README.md` it also refreshes the
datasheet's generated count tables from the files it just wrote.
"""

import argparse
import sys
from pathlib import Path

from lmlab.data.generate import DEFAULT_SEED, update_datasheet, write_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path("data/raw"))
    parser.add_argument("--datasheet", type=Path, default=None,
                        help="datasheet whose generated count block to refresh (e.g. data/README.md)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    manifest = write_dataset(args.out, args.seed)
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['rows']} rows, {info['bytes'] / 1024:.0f} KB")
    if args.datasheet is not None:
        update_datasheet(args.datasheet, args.out)
        print(f"{args.datasheet}: count tables refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
