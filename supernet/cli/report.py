"""``supernet-report <run_dir> [out_dir]``: the analysis figures of a training run as PNG files."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="supernet-report", description=__doc__)
    parser.add_argument("run_dir", help="a supernet-train run directory")
    parser.add_argument("out_dir", nargs="?", help="where to write the PNGs (default: <run_dir>/report)")
    args = parser.parse_args(argv)
    from supernet.analysis import save_report

    try:
        paths = save_report(args.run_dir, args.out_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
