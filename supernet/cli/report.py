"""``supernet-report <run_dir> [out_dir]``: the analysis figures of a training run as PNG files."""

from __future__ import annotations

import argparse

from supernet.cli.common import USER_ERRORS, debugging, exit_with_one_line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="supernet-report", description=__doc__)
    parser.add_argument("run_dir", help="a supernet-train run directory")
    parser.add_argument("out_dir", nargs="?", help="where to write the PNGs (default: <run_dir>/report)")
    parser.add_argument("--ranking", help="also draw a ranking_<task>.json of benchmarks/ranking.py (ranking.png)")
    parser.add_argument("--debug", action="store_true", help="full tracebacks instead of one-line errors")
    args = parser.parse_args(argv)
    from supernet.analysis import save_report

    try:
        paths = save_report(args.run_dir, args.out_dir, args.ranking)
    except USER_ERRORS as err:
        if debugging(args.debug):
            raise
        exit_with_one_line(err)
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
