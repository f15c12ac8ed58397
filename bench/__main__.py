"""``python -m bench`` (``make bench``): evalkit against its peers, one table, every row
measured side by side in this run. Not part of CI.

    python -m bench                     # all four sections
    python -m bench --only 1,3          # some sections
    python -m bench --limit 10          # task.limit of section 1 (queries / pairs / test rows)

Writes the rows as JSON to ``--out`` (default outputs/bench/bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _format(rows) -> str:
    from evalkit.callbacks.summary import format_table

    body = []
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        body.append([r.section, r.what, r.evalkit, r.baseline, ratio, r.target, met, r.note])
    return format_table(body, ["section", "what", "evalkit", "baseline", "ratio", "target", "met", "note"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="1,2,3,4", help="sections to run, e.g. 1,3")
    ap.add_argument("--limit", type=int, default=10, help="task.limit for section 1 (default 10)")
    ap.add_argument("--out", default="outputs/bench/bench.json")
    ap.add_argument("--data-cache", default=None, help="built task data (default: a temporary folder)")
    args = ap.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import torch

    data_cache = Path(args.data_cache or tempfile.mkdtemp(prefix="evalkit-bench-data-"))
    rows, t0 = [], time.perf_counter()
    print(f"evalkit bench on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), load avg {os.getloadavg()[0]:.1f}", flush=True)
    if "1" in sections:
        from bench.vs_mteb import bench_vs_mteb

        print("[1/4] evalkit vs mteb.evaluate ...", flush=True)
        rows += bench_vs_mteb(args.limit, data_cache)
    if "2" in sections:
        from bench.overhead import bench_overhead

        print("[2/4] framework overhead vs bare forward ...", flush=True)
        rows += bench_overhead(data_cache)
    if "3" in sections:
        from bench.padding import bench_padding

        print("[3/4] padding efficiency ...", flush=True)
        rows += bench_padding(data_cache)
    if "4" in sections:
        from bench.endpoint import bench_endpoint

        print("[4/4] endpoint sequential vs concurrent ...", flush=True)
        rows += bench_endpoint()
    total = time.perf_counter() - t0
    print()
    print(_format(rows))
    print(f"\ntotal {total:.0f} s; load avg at end {os.getloadavg()[0]:.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": total, "rows": [r.as_dict() for r in rows]}, indent=2, default=str))
    print(f"rows as JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
