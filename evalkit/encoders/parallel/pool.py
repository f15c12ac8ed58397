"""The parallel encoder: one job's texts split over worker processes, vectors streamed back.

Each encode call is split into one length-balanced shard per worker (greedy on estimated
token counts, longest first, each text to the least loaded worker), so the workers finish
together; each worker packs its shard into token-budget batches itself. Vectors stream up
as each worker finishes a batch (so the cache above commits as it goes), mapped back to
the caller's input order. Every worker BatchReport reaches the parent's hooks (EncodeCounters,
the profiler). ``describe()`` says how: workers, devices, threads, texts, tokens and seconds
per worker, peak memory per worker and device.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import wait

import numpy as np

from evalkit.encoders.base import Batches, EncoderMeta, Hooks, Role, collect
from evalkit.errors import EvalkitError
from evalkit.encoders.parallel.workers import EncodeWorkerError, Worker, exit_description, start_workers, stop_workers

# Cost estimate without a tokenizer in the parent: a CJK character is about one token, a
# word or punctuation run elsewhere about 1.3 (subwords). Only the ranking matters much.
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+|[^\w\s]")


def estimated_tokens(text: str, limit: int | None = None) -> float:
    cjk = len(_CJK.findall(text))
    rest = len(_WORD.findall(_CJK.sub(" ", text))) * 1.3 if cjk < len(text) else 0.0
    n = cjk + rest + 2  # + special tokens
    return min(n, limit) if limit else n


def balanced_split(costs: Sequence[float], n: int) -> list[np.ndarray]:
    """Indices for ``n`` workers with near-equal summed cost (longest-processing-time first)."""
    heap = [(0.0, k) for k in range(n)]
    parts: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, k = heapq.heappop(heap)
        parts[k].append(i)
        heapq.heappush(heap, (load + costs[i], k))
    return [np.asarray(sorted(p), dtype=np.int64) for p in parts]


class ParallelEncoder:
    """An Encoder whose work runs in worker processes (see :mod:`evalkit.encoders.parallel`)."""

    def __init__(self, model_cfg, devices: list[str], threads: int, hooks: Hooks, batching):
        self.hooks, self.devices, self.threads = hooks, list(devices), threads
        self._call = 0
        self._broken: str | None = None
        self.workers: list[Worker] = start_workers(model_cfg, self.devices, threads, batching)
        self._reset_period()
        try:
            self._ready = self._wait_ready()
        except BaseException:
            self.close()
            raise
        first = self._ready[0]["meta"]
        self.meta: EncoderMeta = replace(first, device=f"{len(devices)} workers ({', '.join(devices)})",
                                         extra={**first.extra, "workers": len(devices), "devices": self.devices})

    # -- messages ------------------------------------------------------------------------
    def _fail(self, worker: Worker, during: str) -> EncodeWorkerError:
        worker.process.join(2.0)
        worker.dead = exit_description(worker.process.exitcode)
        hint = ("Vectors already returned are in the embedding cache: rerun the same command to finish."
                if during == "while encoding" else "Its log lines (above, or in the run's log file) say why.")
        self._broken = f"{worker.label(len(self.workers))} died with {worker.dead} {during}. {hint}"
        return EncodeWorkerError(self._broken)

    def _messages(self, during: str):
        """Reply messages as they come; a worker that dies raises, naming it and its exit code."""
        if self._broken:
            raise EncodeWorkerError(self._broken)
        by_conn = {w.conn: w for w in self.workers}
        by_sentinel = {w.process.sentinel: w for w in self.workers}
        while True:
            ready = wait(list(by_conn) + list(by_sentinel), timeout=5.0)
            conns = [r for r in ready if r in by_conn]
            for conn in conns:  # drain replies first: a worker may finish its sends and then die
                try:
                    yield conn.recv()
                except (EOFError, OSError):
                    raise self._fail(by_conn[conn], during) from None
            if not conns:
                for sentinel in (r for r in ready if r in by_sentinel):
                    raise self._fail(by_sentinel[sentinel], during)

    def _raise_worker_error(self, rank: int, payload) -> None:
        exc, text = payload
        where = f"in encode worker {rank} ({self.devices[rank]})"
        if exc is None:
            raise RuntimeError(f"{where}:\n{text}")
        if hasattr(exc, "add_note"):
            exc.add_note(f"{where}; its traceback:\n{text}")
        raise exc

    def _wait_ready(self) -> dict[int, dict]:
        ready: dict[int, dict] = {}
        for kind, rank, _, payload in self._messages("while loading the model"):
            if kind == "error":
                self._raise_worker_error(rank, payload)
            if kind == "ready":
                ready[rank] = payload
                self.workers[rank].pid = payload["pid"]
                if len(ready) == len(self.workers):
                    return ready
        raise AssertionError("unreachable")

    def _count(self, rank: int, report) -> None:
        w = self._period[rank]
        w["batches"] += 1
        w["texts"] += report.n_texts
        w["tokens"] += report.real_tokens or 0
        w["padded_tokens"] += report.padded_tokens or 0
        self.hooks.on_batch_end(report)

    def _rpc(self, rank: int, kind: str, *args):
        self._call += 1
        call = self._call
        self.workers[rank].requests.put((kind, call, args))
        for k, r, c, payload in self._messages(f"answering a {kind!r} request"):
            if k == "batch":
                self._count(r, payload)
            elif c == call and k == "answer":
                return payload
            elif c == call and k == "error":
                self._raise_worker_error(r, payload)
            # anything else belongs to an abandoned call: dropped

    # -- the Encoder protocol --------------------------------------------------------------
    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None) -> Batches:
        if not texts:
            return
        limit = self.meta.max_tokens
        shards = balanced_split([estimated_tokens(t, limit) for t in texts], len(self.workers))
        self._call += 1
        call = self._call
        pending = set()
        t0 = time.perf_counter()
        for rank, idx in enumerate(shards):
            if len(idx):
                self.workers[rank].requests.put(("encode", call, ([texts[i] for i in idx], role, instruction)))
                pending.add(rank)
        for kind, rank, c, payload in self._messages("while encoding"):
            if kind == "batch":
                self._count(rank, payload)
            elif c != call:
                continue  # a reply to a call the caller abandoned (an error further up)
            elif kind == "vectors":
                local, vecs = payload
                yield shards[rank][local], vecs
            elif kind == "done":
                self._period[rank]["seconds"] += payload[0]
                self._period[rank]["cpu_seconds"] += payload[1]
                pending.discard(rank)
                if not pending:
                    self._wall += time.perf_counter() - t0
                    return
            elif kind == "error":
                self._raise_worker_error(rank, payload)

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        return collect(self.encode_iter(texts, role=role, instruction=instruction), len(texts), self.meta.dim)

    def tokenizer_view(self):
        return _ViewProxy(self) if self._ready[0]["has_view"] else None

    # -- how the vectors were computed -----------------------------------------------------
    def _reset_period(self) -> None:
        self._period = [dict(batches=0, texts=0, tokens=0, padded_tokens=0, seconds=0.0, cpu_seconds=0.0)
                        for _ in self.workers]
        self._wall = 0.0

    def describe(self) -> dict:
        """Workers, devices, threads and per-worker figures *since the last call*: the runner
        asks once per task, so each result gets its own task's figures."""
        rows, total = [], dict(texts=0, tokens=0)
        for w, figures in zip(self.workers, self._period):
            try:
                memory = self._rpc(w.rank, "memory") if not self._broken else {}
            except EvalkitError:
                memory = {}
            s = figures["seconds"]
            ready = self._ready[w.rank]
            rows.append({"rank": w.rank, "device": w.device, "pid": w.pid, "gpu": ready["gpu"],
                         "load_seconds": round(ready["load_seconds"], 3), **figures, "seconds": round(s, 4),
                         "cpu_seconds": round(figures["cpu_seconds"], 4),
                         "texts_per_s": round(figures["texts"] / s, 2) if s else None,
                         "tokens_per_s": round(figures["tokens"] / s, 1) if s else None,
                         "rss_peak_mb": memory.get("rss_peak_mb"),
                         "gpu_peak_allocated_mb": memory.get("gpu_peak_allocated_mb"),
                         "gpu_peak_reserved_mb": memory.get("gpu_peak_reserved_mb")})
            total["texts"] += figures["texts"]
            total["tokens"] += figures["tokens"]
        wall = self._wall
        gpu = {}
        for r in rows:
            if r["gpu_peak_allocated_mb"] is not None:
                gpu[r["device"]] = max(gpu.get(r["device"], 0.0), r["gpu_peak_allocated_mb"])
        self._reset_period()
        return {
            "workers": len(self.workers), "devices": list(self.devices), "threads": self.threads,
            "per_worker": rows,
            "total": {**total, "wall_seconds": round(wall, 4),
                      "texts_per_s": round(total["texts"] / wall, 2) if wall else None,
                      "tokens_per_s": round(total["tokens"] / wall, 1) if wall else None},
            "gpu_peak_allocated_mb": gpu or None,  # per CUDA device
            "rss_peak_mb": {f"worker {r['rank']}": r["rss_peak_mb"] for r in rows},
        }

    def close(self) -> None:
        stop_workers(self.workers)


class _ViewProxy:
    """The tokenizer view of worker 0, by request: what ``encode.long_docs=chunk`` needs
    (``offsets``, ``overhead``, ``lengths``, ``max_tokens``) without a model in the parent."""

    def __init__(self, pool: ParallelEncoder):
        self._pool = pool
        self.max_tokens = pool._rpc(0, "view", "max_tokens", ())
        self.n_special = pool._rpc(0, "view", "n_special", ())

    def _ask(self, name: str, *args, **kwargs):
        return self._pool._rpc(0, "view", name, args, kwargs)

    def prepare(self, texts, *, role, instruction=None):
        return self._ask("prepare", list(texts), role=role, instruction=instruction)

    def encode(self, texts):
        return self._ask("encode", list(texts))

    def lengths(self, texts):
        return self._ask("lengths", list(texts))

    def offsets(self, texts):
        return self._ask("offsets", list(texts))

    def overhead(self, role, instruction=None):
        return self._ask("overhead", role, instruction)
