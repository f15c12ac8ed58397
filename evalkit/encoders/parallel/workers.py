"""Encode worker processes: one per device, each keeping its backend loaded across calls.

Engine: the standard library's ``multiprocessing`` with the *spawn* context (a fresh
interpreter per worker: no forked CUDA or tokenizer thread state). Each worker builds the
same backend the in-process path builds (``backend_module(cfg.backend).build``, token-budget
batching included) on its own device, then serves requests until told to stop.

Channels, chosen so that a killed worker cannot hang or corrupt the others:

* requests: one ``multiprocessing.Queue`` per worker, written only by the parent (its feeder
  thread never blocks the parent, whatever the size of the texts);
* replies: one pipe per worker, read by the parent with ``multiprocessing.connection.wait``
  together with the process sentinels. A worker that dies closes its end: the parent sees
  EOF or the sentinel and names the worker and its exit code. (A shared reply queue could
  be left holding half a message by a process killed mid-write.)

Reply messages are tuples ``(kind, rank, call, payload)``: ``ready`` (meta, load seconds, pid),
``batch`` (a BatchReport, forwarded to the parent's hooks), ``vectors`` (indices into the
worker's texts, float32 vectors), ``done`` (wall and CPU seconds of the call), ``answer`` (an RPC result) and
``error`` (an exception raised in the worker, pickled where possible).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import time
import traceback
from dataclasses import dataclass

from evalkit.errors import EvalkitError


class EncodeWorkerError(EvalkitError):
    """An encode worker process died or could not start: the job stops with this message."""


WORKER_NAME = "evalkit-encode-{rank}"


class _ReplyHooks:
    """The worker's hooks: every BatchReport goes to the parent, which passes it on."""

    def __init__(self, rank: int, conn):
        self.rank, self.conn = rank, conn

    def on_batch_end(self, report) -> None:
        self.conn.send(("batch", self.rank, None, report))


def _portable(exc: BaseException) -> tuple[BaseException | None, str]:
    """(the exception itself if it survives pickling, its formatted traceback)."""
    text = "".join(traceback.format_exception(exc, limit=12))
    try:
        pickle.loads(pickle.dumps(exc))
        return exc, text
    except Exception:
        return None, text


def worker_main(rank: int, device: str, threads: int, model_cfg, batching, requests, conn) -> None:
    """Entry point of one worker process (spawned: everything arrives pickled)."""
    # Before torch and tokenizers are imported: their thread pools size themselves from these.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    try:
        served = _Served(rank, device, threads, model_cfg, batching, conn)
    except BaseException as exc:
        conn.send(("error", rank, None, _portable(exc)))
        return
    parent = multiprocessing.parent_process()
    while True:
        try:
            msg = requests.get(timeout=2.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                break  # the parent was killed: do not linger as an orphan holding a device
            continue
        if msg is None:
            break
        kind, call, args = msg
        try:
            served.answer(kind, call, args)
        except BaseException as exc:  # reported to the parent; the worker stays up for the next call
            conn.send(("error", rank, call, _portable(exc)))
    served.backend.close()


class _Served:
    """One worker's loaded backend and its peak-memory scope; answers the parent's requests."""

    def __init__(self, rank: int, device: str, threads: int, model_cfg, batching, conn):
        import torch

        from evalkit.encoders.backends import backend_module
        from evalkit.profiling.memory import cuda_device_of, tracker

        self.rank, self.conn = rank, conn
        torch.set_num_threads(threads)
        if device.startswith("cuda:"):
            torch.cuda.set_device(device)  # so that no library call opens a context on cuda:0 as well
        t0 = time.perf_counter()
        cfg = model_cfg.model_copy(update={"device": device})
        self.backend = backend_module(cfg.backend).build(cfg, _ReplyHooks(rank, conn), batching)
        load_s = time.perf_counter() - t0
        # Peak RSS (and CUDA peaks on a GPU) since the last "memory" request: per-task figures.
        self.peaks = tracker()
        self.cuda = cuda_device_of(self.backend.meta.device)
        self.scope = self.peaks.open(self.cuda)
        has_view = self.backend.tokenizer_view() is not None if hasattr(self.backend, "tokenizer_view") else False
        gpu = None
        if self.cuda is not None:
            props = torch.cuda.get_device_properties(self.cuda)
            gpu = {"name": props.name, "memory_mb": round(props.total_memory / 2**20)}
        conn.send(("ready", rank, None, {"meta": self.backend.meta, "load_seconds": load_s, "pid": os.getpid(),
                                         "has_view": has_view, "threads": torch.get_num_threads(), "gpu": gpu}))

    def answer(self, kind: str, call: int, args) -> None:
        from evalkit.encoders.base import encode_iter

        rank, conn = self.rank, self.conn
        if kind == "encode":
            texts, role, instruction = args
            t0, cpu0 = time.perf_counter(), time.process_time()
            for idx, vecs in encode_iter(self.backend, texts, role=role, instruction=instruction):
                conn.send(("vectors", rank, call, (idx, vecs)))
            # wall and CPU seconds (all threads): CPU / wall below the thread count means the
            # worker waited for a core (other processes on the machine)
            conn.send(("done", rank, call, (time.perf_counter() - t0, time.process_time() - cpu0)))
        elif kind == "memory":
            figures = self.peaks.close(self.scope)
            self.scope = self.peaks.open(self.cuda)
            conn.send(("answer", rank, call, figures))
        elif kind == "view":  # the tokenizer view, for layers above the pool (chunking)
            name, view_args, *view_kwargs = args
            value = getattr(self.backend.tokenizer_view(), name)
            kwargs = view_kwargs[0] if view_kwargs else {}
            conn.send(("answer", rank, call, value(*view_args, **kwargs) if callable(value) else value))
        else:
            raise ValueError(f"unknown request {kind!r}")


def exit_description(code: int | None) -> str:
    if code is None:
        return "no exit code (still running)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: `kill -9`, or the out-of-memory killer)" if name == "SIGKILL" else ""
        return f"exit code {code}, {name}{hint}"
    return f"exit code {code}"


@dataclass
class Worker:
    rank: int
    device: str
    process: object  # multiprocessing Process
    requests: object  # its request Queue
    conn: object  # the parent's end of its reply pipe
    pid: int | None = None
    dead: str | None = None  # why it is gone, once it is

    def label(self, n: int) -> str:
        return f"encode worker {self.rank} of {n} ({self.device}, pid {self.pid or self.process.pid})"


def start_workers(model_cfg, devices: list[str], threads: int, batching) -> list[Worker]:
    ctx = multiprocessing.get_context("spawn")
    workers = []
    for rank, device in enumerate(devices):
        reader, writer = ctx.Pipe(duplex=False)
        requests = ctx.Queue()
        proc = ctx.Process(target=worker_main, name=WORKER_NAME.format(rank=rank), daemon=True,
                           args=(rank, device, threads, model_cfg, batching, requests, writer))
        proc.start()
        writer.close()  # only the child holds the write end now: its death reads as EOF here
        workers.append(Worker(rank, device, proc, requests, reader))
    return workers


def stop_workers(workers: list[Worker], timeout_s: float = 10.0) -> None:
    """Ask every worker to stop, wait a little, then terminate whatever is left."""
    for w in workers:
        if w.process.is_alive():
            try:
                w.requests.put(None)
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + timeout_s
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            w.process.terminate()
            w.process.join(2.0)
    for w in workers:
        w.requests.close()
        w.requests.cancel_join_thread()  # never block exit on requests a dead worker will not read
        w.conn.close()
