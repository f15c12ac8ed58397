"""Section 5: ``kill -9`` during encoding — how much encoding does the rerun have to redo?

``python -m evalkit model=minilm_l6 task=zh_longdoc`` runs in a subprocess with a fresh
embedding cache and is sent SIGKILL ~67 s in (at least ``2 x encode.cache_commit_s`` after
its first commit, so it dies mid-encoding). Two observers, neither of which changes what the
run computes: a callback (:class:`BatchLog`, added with ``+callbacks.bench_log=…``) appends
every finished batch (wall-clock end time, seconds, texts) to a JSON-lines file, and this
process polls the cache file read-only (WAL: readers see committed rows only) for when its
row count grows. Lost encoding = encoding seconds of batches that finished after the last
commit, plus the batch in flight at the kill. The rerun (same command, to completion) then
shows the cache holding what was committed (hits) and recomputes the rest.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evalkit.callbacks.base import Callback

from bench.common import REPO, Row, raw_dir


class BatchLog(Callback):
    """evalkit callback: one JSON line per finished batch, flushed at once (survives SIGKILL)."""

    def __init__(self, path: str):
        self.f = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process's life

    def on_batch_end(self, report) -> None:
        self.f.write(json.dumps({"end": time.time(), "seconds": report.seconds, "texts": report.n_texts}) + "\n")


def _rows(cache: Path) -> int | None:
    if not cache.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None  # being created


def _command(work: Path, data_cache: Path, log: Path | None) -> tuple[list[str], dict]:
    cmd = [sys.executable, "-m", "evalkit", "model=minilm_l6", "task=zh_longdoc",
           f"encode.cache_path={work / 'emb.sqlite'}"]
    if log is not None:
        cmd += ["+callbacks.bench_log._target_=bench.crash.BatchLog", f"+callbacks.bench_log.path={log}"]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "EVALKIT_RAW_DATA": str(raw_dir()), "EVALKIT_OUTPUT_DIR": str(work / "out"),
                        "EVALKIT_CACHE_DIR": str(data_cache)}
    return cmd, env


def kill_during_encoding(work: Path, data_cache: Path, kill_at_s: float = 67.0, commit_s: float = 5.0) -> dict:
    log, cache = work / "batches.jsonl", work / "emb.sqlite"
    cmd, env = _command(work, data_cache, log)
    commits: list[tuple[float, int]] = []  # (wall time first seen, rows)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None:
            n = _rows(cache)
            now = time.time()
            if n and (not commits or n > commits[-1][1]):
                commits.append((now, n))
            if now - start >= kill_at_s and commits and now - commits[0][0] >= 2 * commit_s:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"evalkit finished before the kill (rc {proc.returncode}): {proc.stderr.read()[-2000:]}")
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    batches = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last_commit = commits[-1][0]
    # a commit happens right after the batch that triggers it: batches ending up to the poll
    # that first saw it are in the cache; the poll interval (0.1 s) is the resolution
    after = [b for b in batches if b["end"] > last_commit]
    in_flight = killed_at - batches[-1]["end"] if batches else 0.0
    con = sqlite3.connect(str(cache))
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    return {
        "killed_after_s": killed_at - start, "batches_done": len(batches), "texts_done": sum(b["texts"] for b in batches),
        "encode_s_done": sum(b["seconds"] for b in batches), "rows_committed": commits[-1][1], "commits": len(commits),
        "lost_batches_s": sum(b["seconds"] for b in after), "lost_texts": sum(b["texts"] for b in after),
        "in_flight_s": in_flight, "since_last_commit_s": killed_at - last_commit, "integrity": integrity,
    }


def rerun(work: Path, data_cache: Path) -> dict:
    cmd, env = _command(work, data_cache, None)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"rerun failed (rc {done.returncode}): {done.stderr[-2000:]}")
    (result,) = list((work / "out" / "results").rglob("zh_longdoc.json"))
    ev = json.loads(result.read_text(encoding="utf-8"))["evalkit"]
    prof = ev.get("profile") or {}
    return {"seconds": seconds, "main_score": ev["main_score"], "encode": ev["encode"],
            "encode_s": (prof.get("encode_seconds") or {}).get("total"), "texts": prof.get("texts")}


def bench_crash(data_cache: Path, reference_score: float | None = None, kill_at_s: float = 67.0) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="evalkit-bench-kill-"))
    k = kill_during_encoding(work, data_cache, kill_at_s)
    r = rerun(work, data_cache)
    lost = k["lost_batches_s"] + k["in_flight_s"]
    per_text = r["encode_s"] / r["texts"] if r.get("texts") else None
    hits, misses = r["encode"].get("cache_hits", 0), r["encode"].get("cache_misses", 0)
    same = "" if reference_score is None else f"; score {'=' if abs(r['main_score'] - reference_score) <= 1e-6 else '!='} uninterrupted run"
    note = (f"killed at {k['killed_after_s']:.0f} s after {k['texts_done']} texts ({k['encode_s_done']:.0f} s encoding), "
            f"{k['rows_committed']} committed in {k['commits']} commits; lost: {k['lost_texts']} texts in "
            f"{k['lost_batches_s']:.1f} s of finished batches + {k['in_flight_s']:.1f} s in flight; sqlite "
            f"{k['integrity']}; rerun {r['seconds']:.0f} s: {hits} hits, {misses} misses"
            + (f" ({per_text * 1000:.0f} ms/text)" if per_text else "") + same)
    return [Row("5 kill -9", "zh_longdoc MiniLM, SIGKILL mid-encoding, then rerun", f"{lost:.1f} s lost", "-", None,
                "<= 10 s", lost <= 10, note, {"kill": k, "rerun": r})]
