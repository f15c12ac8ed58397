"""``python -m bench`` (``make bench``): evalkit against its baselines, one table, every row
measured side by side in this run, at full size. Not part of CI.

    python -m bench                     # every section (~22 min on 2 idle CPU cores)
    python -m bench --only 1,3          # some sections
    python -m bench --limit 10          # task.limit of section 1 (measures start-up, not evaluation)

Sections: 1 vs mteb.evaluate (first run, rerun from cache), 2 encode vs bare forward,
3 padding efficiency per task, 4 endpoint concurrency (bench/endpoint.py), 5 kill -9 during
encoding, 6 prefetch on vs off, 7 data parallel (bench/parallel.py), 8 MiniLM's runtimes (dynamic
int8, bfloat16) against torch fp32: throughput (ratio = their texts/s over fp32's) and the
quality delta on code_search with its paired interval (bench/runtimes.py). A section that fails
becomes a row saying why; the others still run. Writes the rows as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, load_avg  # noqa: E402

ALL = "1,2,3,4,5,6,7,8"


def _format(rows) -> str:
    from evalkit.callbacks.summary import format_table

    body = []
    for r in rows:
        met = "-" if r.met is None else ("met" if r.met else "NOT met")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        body.append([r.section, r.what, r.evalkit, r.baseline, ratio, r.target, met, r.note])
    return format_table(body, ["row", "what", "evalkit", "baseline", "ratio", "target", "met", "note"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=ALL, help=f"sections to run (default {ALL})")
    ap.add_argument("--limit", type=int, default=None, help="task.limit for section 1 (default: full size)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per side in section 1, order alternated")
    ap.add_argument("--out", default="outputs/bench/bench.json")
    ap.add_argument("--data-cache", default=None, help="built task data (default: outputs/bench/data, kept)")
    args = ap.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    warnings.filterwarnings("ignore")
    import logging

    import torch

    logging.getLogger("mteb").setLevel(logging.ERROR)
    data_cache = Path(args.data_cache or "outputs/bench/data").resolve()
    data_cache.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads), cuda: {torch.cuda.is_available()}")
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    print(f"evalkit bench {started}: {machine}; load avg {load_avg()}", flush=True)
    rows: list[Row] = []
    t0 = time.perf_counter()
    loads = [load_avg()]
    first_run: dict | None = None

    def section(key: str, title: str, fn, *a, **kw):
        if key not in sections:
            return None
        print(f"[{key}] {title} ... (load avg {load_avg()})", flush=True)
        t = time.perf_counter()
        try:
            out = fn(*a, **kw)
        except Exception as exc:  # one broken section must not lose the table
            traceback.print_exc()
            out = [Row(key, f"{title}: section failed", "-", "-", None, "-", False, f"{type(exc).__name__}: {exc}"[:300])]
        loads.append(load_avg())
        print(f"    {time.perf_counter() - t:.0f} s", flush=True)
        return out

    from bench.crash import bench_crash
    from bench.endpoint import bench_endpoint
    from bench.overhead import bench_overhead
    from bench.padding import bench_padding
    from bench.parallel import bench_parallel
    from bench.prefetch import bench_prefetch
    from bench.runtimes import bench_runtimes
    from bench.vs_mteb import bench_vs_mteb

    out = section("1", "evalkit vs mteb.evaluate", bench_vs_mteb, args.limit, data_cache, args.repeats)
    if out is not None:
        if isinstance(out, tuple):
            out, runs = out
            first_run = runs["first"]
        rows += out
    rows += section("2", "encode vs bare forward", bench_overhead, data_cache) or []
    rows += section("3", "padding efficiency", bench_padding, data_cache, first_run) or []
    rows += section("4", "endpoint concurrency", bench_endpoint) or []
    ref = (first_run or {}).get("scores", {}).get("zh_longdoc") if args.limit is None else None
    rows += section("5", "kill -9 during encoding", bench_crash, data_cache, ref) or []
    rows += section("6", "prefetch on vs off", bench_prefetch, data_cache) or []
    rows += section("7", "data parallel", bench_parallel, data_cache) or []
    rows += section("8", "runtimes vs torch fp32", bench_runtimes, data_cache, args.limit) or []
    total = time.perf_counter() - t0
    print()
    print(_format(rows))
    print(f"\ntotal {total:.0f} s; load avg (1/5/15 min) at start {loads[0]}, at the end {load_avg()}; "
          f"1-min load after each section {[x.split('/')[0] for x in loads[1:]]}")
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"started": started, "machine": machine, "seconds": total, "load_avg": loads,
                                    "argv": sys.argv[1:], "rows": [r.as_dict() for r in rows]}, indent=2, default=str))
    print(f"rows as JSON: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
