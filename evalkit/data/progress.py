"""Progress of a pull over all its files, as evalkit shows the progress of an encode
(:mod:`evalkit.callbacks.progress`): one live tqdm bar on a terminal, a plain line every
``interval_s`` seconds elsewhere (a log, CI, a SLURM job's output) — files and bytes done /
total, rate, ETA."""

from __future__ import annotations

import logging
import sys
import threading
import time

log = logging.getLogger("evalkit.data")


class PullProgress:
    """Thread-safe: transfers report their bytes as they stream, finished files once."""

    def __init__(self, files: int, total_bytes: int, mode: str = "auto", interval_s: float = 10.0, stream=None):
        if mode not in ("auto", "bar", "lines", "off"):
            raise ValueError(f"progress mode must be auto, bar, lines or off, got {mode!r}")
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode, self.interval_s = mode, interval_s
        self.files, self.total = files, total_bytes
        self.files_done = self.bytes_finished = self.in_flight = 0
        self.started = self._last_line = self._last_draw = time.perf_counter()
        self._lock = threading.Lock()
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, file=self.stream, desc="pull",
                             dynamic_ncols=True, leave=True)

    def file_bar(self, size: int, cancel: threading.Event, cancelled: type[Exception]) -> _FileBar:
        return _FileBar(self, size, cancel, cancelled)

    def file_done(self, nbytes: int) -> None:
        with self._lock:
            self.files_done += 1
            self.bytes_finished += nbytes
        self._show()

    def bytes_done(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_finished += nbytes
        self._show()

    def _add_in_flight(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
        self._show()

    def line(self, final: bool = False) -> str:
        done = min(self.bytes_finished + self.in_flight, self.total)
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = f", ETA {left / rate:.0f} s" if left > 0 and rate > 0 and not final else ""
        state = "done" if final else f"{100 * done / self.total:.0f}%" if self.total else "-"
        return (f"pull: {self.files_done:,}/{self.files:,} files, {done / 1e6:.1f}/{self.total / 1e6:.1f} MB ({state}), "
                f"{rate / 1e6:.1f} MB/s{eta}, {elapsed:.0f} s")

    def _show(self) -> None:
        if self.mode == "off":
            return
        now = time.perf_counter()
        if self._bar is not None:
            if now - self._last_draw < 0.1:  # a refresh per 1 kB chunk would cost more than the transfer
                return
            self._last_draw = now
            with self._lock:
                self._bar.n = min(self.bytes_finished + self.in_flight, self.total)
                self._bar.set_postfix_str(f"{self.files_done:,}/{self.files:,} files", refresh=False)
                self._bar.refresh()
            return
        if now - self._last_line >= self.interval_s:
            self._last_line = now
            log.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.n = min(self.bytes_finished, self.total)
            self._bar.set_postfix_str(f"{self.files_done:,}/{self.files:,} files", refresh=False)
            self._bar.close()
            self._bar = None
        elif self.mode == "lines":
            log.info(self.line(final=self.files_done == self.files))


class _FileBar:
    """The progress-bar object pooch's HTTP downloader feeds (``total``, ``update``, ``reset``,
    ``close``) for one transfer; a retry starts the file's count again. Raises ``cancelled``
    from inside the transfer once the pull stops, so no thread goes on downloading."""

    def __init__(self, progress: PullProgress, size: int, cancel: threading.Event, cancelled: type[Exception]):
        self.progress, self.size, self.cancel, self.cancelled = progress, size, cancel, cancelled
        self.n = 0
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:  # pooch sets it when a transfer (or its retry) starts
        self._total = value
        self._set(0)

    def update(self, n: int) -> None:
        if self.cancel.is_set():
            raise self.cancelled("pull stopped")
        self._set(min(self.n + n, self.size))

    def reset(self) -> None:
        pass  # pooch resets and fills the bar at the end; the finished file is counted by the pull

    def close(self) -> None:
        pass

    def finish(self) -> None:
        self._set(0)

    def _set(self, n: int) -> None:
        delta, self.n = n - self.n, n
        if delta:
            self.progress._add_in_flight(delta)
