"""evalkit's own progress while a task encodes: texts done / total per role, texts/s and
tokens/s, ETA, cache hits — one live tqdm bar on a terminal, a plain line every
``interval_s`` seconds otherwise (a log file, CI, a SLURM job's output)."""

from __future__ import annotations

import logging
import os
import sys
import time

from evalkit.callbacks.base import Callback, EncodeProgress, JobInfo

log = logging.getLogger("evalkit.progress")


def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


class Progress(Callback):
    """``mode``: auto (a bar on a terminal, lines elsewhere) | bar | lines | off."""

    def __init__(self, mode: str = "auto", interval_s: float = 10.0, stream=None):
        if mode not in ("auto", "bar", "lines", "off"):
            raise ValueError(f"progress mode must be auto, bar, lines or off, got {mode!r}")
        self.stream = stream or sys.stderr
        self.mode = mode
        if mode == "auto":
            self.mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.interval_s = interval_s
        self._task = "?"
        self._bar = None
        self._last_line = 0.0
        self._tokens = 0  # real tokens the model encoded during the current call

    def on_task_start(self, job: JobInfo, task) -> None:
        self._task = task.name

    def on_batch_end(self, report) -> None:
        self._tokens += report.real_tokens or 0

    def on_encode_progress(self, p: EncodeProgress) -> None:
        if self.mode == "off" or p.total == 0:
            return
        if p.done == 0 and not p.finished:  # a new encode call
            self._tokens, self._last_line = 0, time.perf_counter()
            if self.mode == "bar":
                self._open_bar(p)
            return
        elapsed = time.perf_counter() - p.started
        computed = p.done - p.cached
        figures = {"texts/s": f"{_rate(computed, elapsed):.1f}", "tok/s": f"{_rate(self._tokens, elapsed):,.0f}",
                   "cached": p.cached}
        if self.mode == "bar":
            if self._bar is not None:
                self._bar.n = p.done
                self._bar.set_postfix(figures, refresh=False)
                self._bar.refresh()
                if p.finished:
                    self._bar.close()
                    self._bar = None
            return
        now = time.perf_counter()
        if p.done == p.total and not p.finished:
            return  # the "done" line follows at once
        if p.finished or now - self._last_line >= self.interval_s:
            self._last_line = now
            left = p.total - p.done
            speed = _rate(computed, elapsed)
            eta = f", ETA {left / speed:.0f} s" if left and speed > 0 else ""
            state = "done" if p.finished else f"{100 * p.done / p.total:.0f}%"
            log.info("%s %s: %d/%d texts (%s), %s texts/s, %s tok/s, %d cached%s, %.0f s", self._task, p.role,
                     p.done, p.total, state, figures["texts/s"], figures["tok/s"], p.cached, eta, elapsed)

    def _open_bar(self, p: EncodeProgress) -> None:
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        # a terminal that reports no size (a fresh pty, some CI runners): tqdm would hide the bar
        width = {"dynamic_ncols": True} if _columns(self.stream) > 0 else {"ncols": 100, "nrows": 20}
        self._bar = tqdm(total=p.total, desc=f"{self._task} {p.role}", unit="text", file=self.stream,
                         leave=False, mininterval=0.5, **width)


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0
