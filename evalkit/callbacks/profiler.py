"""Latency, throughput and memory of every task, recorded in its result file.

The profiler sees a run only through the callback hooks: job start, model loaded, task
start, every batch (``BatchReport`` from the backends, timed with device synchronisation
on CUDA), ``task_figures`` — where it returns ``{"profile": …}``, which the runner puts into
the result's typed block (``EvalkitBlock.profile``) before the file is written — task end,
and job end, where a compact table is printed.

Times: encode seconds per role are the union of the batches' time intervals, so they stay
right when an endpoint client sends requests concurrently; scoring is task time minus
encode time (mteb's evaluators, plus data handling between batches).
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from evalkit.callbacks.base import Callback, JobInfo, TaskRecord
from evalkit.encoders.base import BatchReport
from evalkit.profiling.device import device_info
from evalkit.profiling.memory import PeakTracker, cuda_device_of, tracker

REMOTE_GPU_NOTE = "model runs on the server: its GPU memory is not visible to the client"


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total time covered by (start, end) intervals, overlaps counted once."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def latency_stats(seconds: list[float]) -> dict | None:
    if not seconds:
        return None
    ms = np.asarray(seconds) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p95": round(float(np.percentile(ms, 95)), 3),
        "max": round(float(ms.max()), 3),
        "n": len(seconds),
    }


def summarize_batches(reports: list[tuple[float, BatchReport]]) -> dict:
    """Figures from (end time, report) pairs: per-role encode time, latency, throughput, padding."""
    by_role: dict[str, list[tuple[float, float]]] = {}
    for end, r in reports:
        by_role.setdefault(r.role.value, []).append((end - r.seconds, end))
    encode_s = {role: round(union_seconds(iv), 4) for role, iv in by_role.items()}
    total_s = union_seconds([iv for ivs in by_role.values() for iv in ivs])
    encode_s["total"] = round(total_s, 4)
    texts = sum(r.n_texts for _, r in reports)
    counted = [r for _, r in reports if r.real_tokens is not None]
    real = sum(r.real_tokens for r in counted) if counted else None
    padded_rows = [r for r in counted if r.padded_tokens is not None]
    padded = sum(r.padded_tokens for r in padded_rows) if padded_rows else None
    real_in_padded = sum(r.real_tokens for r in padded_rows)
    remote = any(r.remote for _, r in reports)
    return {
        "batches": len(reports),
        "remote": remote,
        "encode_seconds": encode_s,
        # Local: one forward pass (device-synchronised). Endpoint: one HTTP request, client side.
        "batch_latency_ms" if not remote else "request_latency_ms": latency_stats([r.seconds for _, r in reports]),
        "texts": texts,
        "texts_per_s": round(texts / total_s, 2) if total_s > 0 else None,
        "real_tokens": real,
        "padded_tokens": padded,
        "tokens_per_s": round(real / total_s, 1) if real is not None and total_s > 0 else None,
        "padding_efficiency": round(real_in_padded / padded, 4) if padded else None,
        "truncated_texts": sum(r.truncated_texts for _, r in reports),
        "tokens_cut": sum(r.tokens_cut for _, r in reports),
    }


class Profiler(Callback):
    """Gives every task result its ``evalkit.profile`` block (``task_figures``) and prints a profile table.

    ``rss_method``: ``auto`` (VmHWM reset where permitted, else sampling), ``hwm``, ``sample``.
    """

    def __init__(self, print_table: bool = True, rss_method: str = "auto", stream=None):
        self.print_table = print_table
        self.stream = stream
        self.tracker: PeakTracker = tracker(rss_method)
        self._lock = threading.Lock()
        self._reports: list[tuple[float, BatchReport]] = []
        self._stages: dict[str, dict] = {}  # rerank seconds / pairs of the task (on_stage)
        self._in_task = False
        self._scope = None
        self._task_t0 = 0.0
        self._device: dict | None = None
        self._remote_backend = False

    # -- hooks -----------------------------------------------------------------------------
    def on_job_start(self, job: JobInfo) -> None:
        self._device = None

    def on_model_loaded(self, job: JobInfo) -> None:
        meta = job.model_meta
        self._remote_backend = bool(meta and meta.backend == "openai_compat")
        self._device = device_info(None if self._remote_backend or meta is None else meta.device)
        if self._remote_backend:
            self._device["device"] = f"endpoint ({meta.extra.get('base_url', meta.model_id)})" if meta else "endpoint"
        if self._in_task and self._scope is not None:  # loaded lazily, inside a task: track its device from now
            self.tracker.close(self._scope)
            self._scope = self.tracker.open(cuda_device_of(None if self._remote_backend or meta is None else meta.device))

    def on_task_start(self, job: JobInfo, task) -> None:
        with self._lock:
            self._reports, self._stages = [], {}
            self._in_task = True
        device = None if self._remote_backend or job.model_meta is None else job.model_meta.device
        self._scope = self.tracker.open(cuda_device_of(device))
        self._task_t0 = time.perf_counter()

    def on_batch_end(self, report: BatchReport) -> None:
        end = time.perf_counter()
        with self._lock:
            if self._in_task:
                self._reports.append((end, report))

    def on_stage(self, name: str, seconds: float, items: int) -> None:
        with self._lock:
            if self._in_task:
                stage = self._stages.setdefault(name, {"seconds": 0.0, "items": 0, "calls": 0})
                stage["seconds"] += seconds
                stage["items"] += items
                stage["calls"] += 1

    def task_figures(self, job: JobInfo, task) -> dict:
        task_s = time.perf_counter() - self._task_t0
        with self._lock:
            self._in_task = False
            reports = list(self._reports)
            stages = {k: v | {"seconds": round(v["seconds"], 4)} for k, v in self._stages.items()}
        memory = self.tracker.close(self._scope) if self._scope is not None else {}
        self._scope = None
        figures = summarize_batches(reports)
        remote = figures["remote"] or self._remote_backend
        profile = {
            "model_load_seconds": _round(job.model_load_seconds),
            "data_load_seconds": _round(getattr(task, "data_load_seconds", None)),
            "task_seconds": round(task_s, 4),
            **figures,
            # mteb's evaluators and data handling: what neither encoding nor a stage (reranking) took
            "scoring_seconds": round(max(0.0, task_s - figures["encode_seconds"]["total"]
                                         - sum(v["seconds"] for v in stages.values())), 4),
            "stages": stages or None,
            "rss_peak_mb": memory.get("rss_peak_mb"),
            "rss_start_mb": memory.get("rss_start_mb"),
            "rss_method": self.tracker.rss_note,
            "gpu_memory": None,
            "gpu_memory_note": None,
            "device": self._device or device_info(None),
        }
        profile["remote"] = remote
        if remote:
            profile["gpu_memory_note"] = REMOTE_GPU_NOTE
        elif "gpu_peak_allocated_mb" in memory:
            profile["gpu_memory"] = {
                "peak_allocated_mb": memory["gpu_peak_allocated_mb"],
                "peak_reserved_mb": memory["gpu_peak_reserved_mb"],
                "allocated_at_start_mb": memory["gpu_allocated_at_start_mb"],
            }
        else:
            profile["gpu_memory_note"] = f"no CUDA device (model on {profile['device'].get('device')})"
        return {"profile": profile}

    def on_job_end(self, job: JobInfo, records: list[TaskRecord]) -> None:
        if not self.print_table or not records:
            return
        from evalkit.callbacks.summary import format_table

        rows = [profile_row(r) for r in records]
        print("\nprofile\n" + format_table(rows, PROFILE_HEADER), file=self.stream or sys.stdout)


PROFILE_HEADER = [
    "model", "task", "load s", "encode s", "score s", "batch p50/p95/max ms",
    "texts/s", "tok/s", "pad eff", "trunc", "peak RSS MB", "peak GPU MB",
]


def profile_row(record: TaskRecord) -> list[str]:
    p = (record.result.evalkit.profile if record.result is not None else None) or {}
    lat = p.get("batch_latency_ms") or p.get("request_latency_ms")
    gpu = p.get("gpu_memory")
    skipped = " (saved)" if record.status == "skipped" else ""
    return [
        record.model_name,
        record.task_name + skipped,
        _fmt(p.get("model_load_seconds"), ".1f"),
        _fmt((p.get("encode_seconds") or {}).get("total"), ".2f"),
        _fmt(p.get("scoring_seconds"), ".2f"),
        f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['max']:.1f}" + (" (http)" if p.get("remote") else "") if lat else "-",
        _fmt(p.get("texts_per_s"), ".1f"),
        _fmt(p.get("tokens_per_s"), ".0f"),
        _fmt(p.get("padding_efficiency"), ".2f"),
        f"{p.get('truncated_texts', 0)}/{p.get('tokens_cut', 0)}" if p else "-",
        _fmt(p.get("rss_peak_mb"), ".0f"),
        f"{gpu['peak_allocated_mb']:.0f}/{gpu['peak_reserved_mb']:.0f}" if gpu else ("server" if p.get("remote") else "-"),
    ]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _round(value, digits: int = 4):
    return round(value, digits) if value is not None else None
