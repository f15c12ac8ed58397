"""The measurements of the comparison task, for one loaded encoder.

* short-sentence latency: batch 1, median of ``short_repeats`` passes after ``warmup``;
* latency and peak memory vs input length (``lengths`` up to the model's limit, plus the
  limit itself) at batch 1 and at ``batch_size``; the 1k-token figure is the 1,024 point
  (measured even when the model truncates it, and marked so);
* output dimension (from the vectors) and max length (the configured limit).

In-process backends are timed around one ``encode_batch`` call — the backend's own
tokenisation, forward pass and pooling, device-synchronised, all texts in one batch.
Endpoint models are timed around ``encode`` (one HTTP request per batch, client side).
Peak memory per point: ``torch.cuda`` peak allocated / reserved on CUDA (reset per point),
peak process RSS always (see ``evalkit.profiling.memory``); for an endpoint both are the
client's, so GPU memory is reported as null.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from evalkit.encoders.batching import is_out_of_memory
from evalkit.encoders.base import Role
from evalkit.tasks.perf.texts import estimate_chars_per_token, texts_of_length
from evalkit.profiling.memory import cuda_device_of, tracker
from evalkit.tasks.perf.settings import PerfSettings

log = logging.getLogger("evalkit.perf")


def is_local(encoder) -> bool:
    return hasattr(encoder, "encode_batch") and getattr(encoder, "view", None) is not None


class PassTimer:
    """Runs one batch of texts through an encoder and times it; counts tokens the model's way."""

    def __init__(self, encoder, counters, chars_per_token: float | None = None):
        self.encoder, self.counters = encoder, counters  # the stack's EncodeCounters (endpoint usage counts)
        self.local = is_local(encoder)
        self.device = encoder.meta.device if self.local else None
        self.cuda = cuda_device_of(self.device)
        self.token_source = "model tokenizer (exact)" if self.local else "approximation"
        self._cpt = chars_per_token
        self.server_tokens_per_text: float | None = None

    def count(self, texts: list[str]) -> list[int]:
        if self.local:
            return self.encoder.view.lengths(self.encoder.prepare(texts, role=Role.DOCUMENT))
        # Endpoint: no tokenizer here. Documented approximation: characters / chars-per-token,
        # calibrated on this corpus from the server's usage counts when it reports them.
        cpt = self._cpt or 1.0
        return [max(1, round(len(t) / cpt)) for t in texts]

    def calibrate_endpoint(self, sample: str) -> None:
        """Characters per token from the server's usage counts (one request), else 1.0 (about right
        for Chinese with BERT/XLM-R/Qwen vocabularies: roughly one token per Han character)."""
        if self.local or self._cpt:
            self.token_source = "approximation (user-set characters per token)" if self._cpt else self.token_source
            return
        before = self.counters.snapshot()
        self.encoder.encode([sample], role=Role.DOCUMENT)
        tokens = self.counters.since(before)["real_tokens"]
        if tokens > 0:
            self._cpt = len(sample) / tokens
            self.token_source = f"approximation: {self._cpt:.3f} characters/token from the server's usage counts"
        else:
            self._cpt = 1.0
            self.token_source = "approximation: 1 token per character (server reported no usage)"

    def run(self, texts: list[str]) -> tuple[float, Any]:
        """Seconds for one pass over ``texts`` as one batch, and the vectors."""
        from evalkit.encoders.torch_utils import synchronize

        if self.local:
            prepared = self.encoder.prepare(texts, role=Role.DOCUMENT)
            synchronize(self.device)
            t0 = time.perf_counter()
            vecs = self.encoder.encode_batch(prepared, Role.DOCUMENT)
            synchronize(self.device)
            return time.perf_counter() - t0, vecs
        before = self.counters.snapshot()
        t0 = time.perf_counter()
        vecs = self.encoder.encode(texts, role=Role.DOCUMENT)
        seconds = time.perf_counter() - t0
        counted = self.counters.since(before)["real_tokens"]
        # the server's own count (usage.prompt_tokens) of what it processed, per text
        self.server_tokens_per_text = round(counted / len(texts), 1) if counted else None
        return seconds, vecs


def measure_point(timer: PassTimer, texts: list[str], settings: PerfSettings, repeats: int) -> dict:
    """Warm-up, then timed passes (bounded by the point budget) with peak memory around them."""
    for _ in range(settings.warmup):
        timer.run(texts)
    scope = tracker().open(timer.cuda)
    times, vecs, started = [], None, time.perf_counter()
    try:
        for _ in range(repeats):
            seconds, vecs = timer.run(texts)
            times.append(seconds)
            if time.perf_counter() - started > settings.point_budget_s:
                break
    finally:
        memory = tracker().close(scope)
    point = {
        "latency_ms": round(statistics.median(times) * 1000, 3),
        "latency_min_ms": round(min(times) * 1000, 3),
        "latency_max_ms": round(max(times) * 1000, 3),
        "repeats": len(times),
        "rss_peak_mb": memory.get("rss_peak_mb"),
        "gpu_peak_allocated_mb": memory.get("gpu_peak_allocated_mb"),
        "gpu_peak_reserved_mb": memory.get("gpu_peak_reserved_mb"),
    }
    point["dim"] = int(vecs.shape[1]) if vecs is not None else None
    if not timer.local:
        point["server_tokens_per_text"] = timer.server_tokens_per_text
    return point


def sweep_lengths(settings: PerfSettings, max_tokens: int | None) -> list[int]:
    """The requested lengths up to the model's limit (and the cap), plus the limit itself."""
    cap = min(x for x in (max_tokens, settings.max_length) if x is not None) if (max_tokens or settings.max_length) else None
    out = [n for n in settings.lengths if cap is None or n <= cap]
    if cap is not None and cap not in out and cap > (out[-1] if out else 0) and cap <= max(settings.lengths):
        out.append(cap)
    return out


class LengthTexts:
    """Texts of exactly n tokens cut from the corpus, kept per length (batch 1 uses the first)."""

    def __init__(self, corpus: str, timer: PassTimer, batch_size: int):
        self.corpus, self.timer, self.batch_size = corpus, timer, batch_size
        self.chars_per_token = estimate_chars_per_token(corpus, timer.count)
        self.cut: dict[int, list[str]] = {}

    def __call__(self, n: int, k: int) -> list[str]:
        if n not in self.cut or len(self.cut[n]) < k:
            self.cut[n] = texts_of_length(self.corpus, n, max(k, self.batch_size), self.timer.count,
                                          self.chars_per_token)
        return self.cut[n][:k]


def run_perf(encoder, counters, corpus: str, settings: PerfSettings, load_seconds: float | None,
             progress=None) -> dict:
    """All figures of the comparison task for one model (``encoder``: the backend itself, not
    the cache above it, which would time lookups; a JSON-ready dict)."""
    meta = encoder.meta
    timer = PassTimer(encoder, counters, settings.endpoint_chars_per_token)
    if not timer.local:
        timer.calibrate_endpoint(corpus[:400])  # one request; endpoints can be slow
    texts = LengthTexts(corpus, timer, settings.batch_size)
    weights_gpu_mb = None
    if timer.cuda is not None:
        import torch

        weights_gpu_mb = round(torch.cuda.memory_allocated(timer.cuda) / 2**20, 1)
    short = measure_point(timer, texts(settings.short_tokens, 1), settings, settings.short_repeats)
    short["tokens"] = settings.short_tokens
    points = sweep(timer, texts, settings, meta, progress)
    return {
        "model": meta.name, "model_id": meta.model_id, "revision": meta.revision, "backend": meta.backend,
        "device": meta.device if timer.local else "endpoint", "dtype": meta.dtype,
        "load_seconds": round(load_seconds, 3) if load_seconds is not None else None,
        "dim": short.get("dim"), "max_tokens": meta.max_tokens, "parameters": meta.parameters,
        "weight_bytes": meta.weight_bytes, "weights_gpu_mb": weights_gpu_mb, "short": short,
        "at_1k": next((p for p in points if p["tokens"] == 1024 and p["batch"] == 1), None),
        "points": points, "batch_size": settings.batch_size, "token_count": timer.token_source,
        "memory_kind": "gpu" if timer.cuda is not None else ("none (endpoint)" if not timer.local else "rss"),
    }


def sweep(timer: PassTimer, texts: LengthTexts, settings: PerfSettings, meta, progress=None) -> list[dict]:
    """One point per (length, batch size); after an out-of-memory error (or a pass slower than
    the point budget) the longer lengths of that batch size are skipped, saying why."""
    lengths = sweep_lengths(settings, meta.max_tokens)
    # The seed table's 1k-token figure: measured even when the model truncates it (and marked
    # so), unless the user capped the sweep below it.
    wants_1k = 1024 not in lengths and (settings.max_length is None or settings.max_length >= 1024)
    points: list[dict] = []
    for batch in sorted({1, settings.batch_size}):
        stop_reason = None
        for n in sorted(set(lengths + ([1024] if wants_1k and batch == 1 else []))):
            row = {"tokens": n, "batch": batch, "truncated": bool(meta.max_tokens and n > meta.max_tokens)}
            if stop_reason:
                points.append(row | {"skipped": stop_reason})
                continue
            if progress:
                progress(f"{meta.name}: {n} tokens x {batch}")
            batch_texts = texts(n, batch)
            row["tokens_counted"] = sorted(set(timer.count(batch_texts)))
            try:
                row |= measure_point(timer, batch_texts, settings, settings.repeats)
            except Exception as exc:  # OOM at a length (or a server refusing it) is a result, not a crash
                if not is_out_of_memory(exc) and timer.local:
                    raise
                _free_cuda(timer)
                error = "out of memory" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"[:300]
                points.append(row | {"error": error})
                stop_reason = f"{error[:80]} at {n} tokens"
                continue
            points.append(row)
            if row["latency_min_ms"] / 1000 > settings.point_budget_s and not row["truncated"]:
                stop_reason = f"one pass at {n} tokens took {row['latency_min_ms'] / 1000:.1f} s > point_budget_s"
    return points


def _free_cuda(timer: PassTimer) -> None:
    if timer.cuda is not None:
        import torch

        torch.cuda.empty_cache()
