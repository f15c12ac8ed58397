"""``python -m evalkit.leaderboard <folders…> --out leaderboard.json`` — see ``--help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.leaderboard import FORMATS, build_leaderboard, write_outputs
from evalkit.leaderboard.markdown import console_summary
from evalkit.leaderboard.schema import SCHEMA_VERSION, json_schema_text

EPILOG = f"""\
folders may be any mix of
  results folders   <results_dir>/<model>/<revision>/<Task>.json (e.g. outputs/results)
  sweep folders     outputs/multirun/<date>: the pairs the sweep asked for, from the
                    results folder each job used; a pair whose job was killed shows as missing
  anything above    e.g. outputs/ (searched recursively)

every (model variant, task) pair is a cell: ok (mteb's score of the result file, with a 95%
bootstrap interval from its per-query scores), failed (with the reason from the failure
record) or missing; never a zero. Means and ranks cover models with every task ok. Every pair
of models (or every model against --baseline) is compared per task: paired difference with its
interval, paired permutation p-value, Holm-corrected, win/tie/loss counts.

examples:
  python -m evalkit.leaderboard outputs/results --out leaderboard.json
  python -m evalkit.leaderboard outputs/results --baseline qwen3_0_6b --out leaderboard.json
  python -m evalkit.leaderboard outputs/multirun/2026-01-31_10-00-00 --out lb.json --formats json,html
  python -m evalkit.leaderboard outputs/results --out lb.json --mteb-dir mteb_cache
      # then: mteb.ResultCache(cache_path="mteb_cache").load_results(include_remote=False)

schema: leaderboard.json follows evalkit/leaderboard/leaderboard.schema.json (version {SCHEMA_VERSION});
print it with --print-schema.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m evalkit.leaderboard",
        description="Build a leaderboard (JSON, Markdown, HTML, PNG) from evalkit result folders.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folders", nargs="*", type=Path, help="results folders and/or sweep folders")
    p.add_argument("--out", type=Path, default=Path("leaderboard.json"),
                   help="leaderboard JSON path; .md/.html/.png are written beside it (default: %(default)s)")
    p.add_argument("--formats", default=",".join(FORMATS),
                   help=f"comma-separated subset of {','.join(FORMATS)} (default: all)")
    p.add_argument("--mteb-dir", type=Path, default=None,
                   help="also copy the ok results into mteb's results-folder layout under this folder")
    p.add_argument("--baseline", default=None,
                   help="compare every model with this one (a model id of the board, or a config name that names "
                        "exactly one row); default: every pair of models")
    p.add_argument("--zero-shot-only", action="store_true",
                   help="leave cells out of the means where the model declares training on the task's data "
                        "(mteb's model registry; marked ‡); unknown training data (?) stays in")
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown table")
    p.add_argument("--print-schema", action="store_true", help="print the JSON Schema of leaderboard.json and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_schema:
        sys.stdout.write(json_schema_text())
        return 0
    if not args.folders:
        print("evalkit.leaderboard: give at least one results or sweep folder (see --help)", file=sys.stderr)
        return 2
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    try:
        lb = build_leaderboard(args.folders, baseline=args.baseline, zero_shot_only=args.zero_shot_only)
        written = write_outputs(lb, args.out, formats=formats, mteb_dir=args.mteb_dir)
    except (FileNotFoundError, LookupError, ValueError, EvalkitError) as exc:
        print(f"evalkit.leaderboard: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(console_summary(lb))
    for w in lb.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print("written: " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
