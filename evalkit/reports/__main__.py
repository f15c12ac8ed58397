"""``python -m evalkit.reports perf <dirs…> [--out DIR]``: merge perf results of runs and sweeps.

Finds every ``perf.json`` written by ``task=perf`` under the given folders (a results folder,
a multirun folder, single files), keeps the newest per (model, device), and writes
``perf_report.json``, ``perf_report.md`` and ``perf_report.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalkit.reports.perf import load_perf_results, write_report
from evalkit.tasks.perf.table import markdown_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.reports", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("perf", help="merge perf results into one JSON, Markdown table and PNG plot")
    rep.add_argument("dirs", nargs="+", type=Path, help="folders (or perf.json files) to search")
    rep.add_argument("--out", type=Path, default=Path("."), help="output folder (default: current folder)")
    rep.add_argument("--stem", default="perf_report", help="output file name stem")
    args = parser.parse_args(argv)

    missing = [str(d) for d in args.dirs if not d.exists()]
    if missing:
        print(f"evalkit.reports: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = load_perf_results(args.dirs)
    if not results:
        print(f"evalkit.reports: no perf results (perf.json from task=perf) under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 1
    paths = write_report(results, args.out, args.stem)
    print(markdown_tables(results))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
