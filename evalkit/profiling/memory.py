"""Peak memory over a stretch of code: process RSS always, torch.cuda peaks on CUDA.

Peaks are kept in *scopes* that may nest: the profiler opens one per task while the perf
task opens one per measured input length inside it. Resetting a peak counter (VmHWM,
``torch.cuda.reset_peak_memory_stats``) would otherwise erase the outer scope's peak, so
every reset first folds the current peak into all open scopes.

How peak RSS is measured (``RssMethod``):
  ``hwm``    — Linux: write ``5`` to ``/proc/self/clear_refs`` (resets VmHWM to the current
               RSS), read ``VmHWM`` at the end. Exact: the kernel tracks every page fault, so
               a short spike between two samples is not missed. Chosen when permitted.
  ``sample`` — a daemon thread reads ``VmRSS`` every few milliseconds. Used where
               clear_refs is not writable (some sandboxes); may miss spikes shorter than
               the interval, so the figure is a lower bound.
  ``lifetime`` — no /proc (macOS, Windows): ``getrusage`` peak of the whole process, which
               cannot be reset; reported with that caveat.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MB = 1024 * 1024


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size of this process."""
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else None


def _hwm_bytes() -> int | None:
    kb = _status_kb("VmHWM")
    return kb * 1024 if kb is not None else None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _lifetime_peak_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def best_rss_method() -> str:
    if _hwm_bytes() is not None and _reset_hwm():
        return "hwm"
    if rss_bytes() is not None:
        return "sample"
    return "lifetime"


RSS_METHOD_NOTES = {
    "hwm": "VmHWM after reset via /proc/self/clear_refs (exact kernel peak)",
    "sample": "VmRSS sampled every {ms:g} ms by a thread (lower bound: may miss shorter spikes)",
    "lifetime": "getrusage peak of the whole process (cannot be reset on this OS)",
}


@dataclass
class _Scope:
    method: str
    rss_start: int | None
    rss_peak: int = 0
    cuda_device: object = None
    cuda_alloc_start: int = 0
    cuda_alloc_peak: int = 0
    cuda_reserved_peak: int = 0
    closed: bool = False
    extra: dict = field(default_factory=dict)


class _Sampler(threading.Thread):
    def __init__(self, tracker: "PeakTracker", interval_s: float):
        super().__init__(daemon=True, name="evalkit-rss-sampler")
        self.tracker = tracker
        self.interval_s = interval_s
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.tracker._fold_rss(rss_bytes() or 0)


class PeakTracker:
    """Process-wide: open scopes, each collecting the peak RSS and CUDA memory seen while open."""

    def __init__(self, rss_method: str = "auto", sample_interval_s: float = 0.005):
        self.rss_method = best_rss_method() if rss_method == "auto" else rss_method
        self.sample_interval_s = sample_interval_s
        self._scopes: list[_Scope] = []
        self._lock = threading.RLock()
        self._sampler: _Sampler | None = None

    @property
    def rss_note(self) -> str:
        return RSS_METHOD_NOTES[self.rss_method].format(ms=self.sample_interval_s * 1000)

    # -- folding current peaks into the open scopes before a counter is reset ------------
    def _fold_rss(self, value: int) -> None:
        with self._lock:
            for s in self._scopes:
                s.rss_peak = max(s.rss_peak, value)

    def _fold_cuda(self) -> None:
        import torch

        for s in self._scopes:
            if s.cuda_device is not None:
                s.cuda_alloc_peak = max(s.cuda_alloc_peak, torch.cuda.max_memory_allocated(s.cuda_device))
                s.cuda_reserved_peak = max(s.cuda_reserved_peak, torch.cuda.max_memory_reserved(s.cuda_device))

    def open(self, cuda_device=None) -> _Scope:
        with self._lock:
            rss_now = rss_bytes() if self.rss_method != "lifetime" else _lifetime_peak_bytes()
            if self.rss_method == "hwm":
                self._fold_rss(_hwm_bytes() or 0)
                _reset_hwm()
            elif self.rss_method == "sample" and self._sampler is None:
                self._sampler = _Sampler(self, self.sample_interval_s)
                self._sampler.start()
            scope = _Scope(method=self.rss_method, rss_start=rss_now, rss_peak=rss_now or 0)
            if cuda_device is not None:
                import torch

                self._fold_cuda()
                torch.cuda.synchronize(cuda_device)
                torch.cuda.reset_peak_memory_stats(cuda_device)
                scope.cuda_device = cuda_device
                scope.cuda_alloc_start = torch.cuda.memory_allocated(cuda_device)
            self._scopes.append(scope)
            return scope

    def close(self, scope: _Scope) -> dict:
        """Stop collecting; returns the scope's figures in MiB (None where not measured)."""
        with self._lock:
            if self.rss_method == "hwm":
                self._fold_rss(_hwm_bytes() or 0)
            elif self.rss_method == "sample":
                self._fold_rss(rss_bytes() or 0)
            else:
                self._fold_rss(_lifetime_peak_bytes() or 0)
            if scope.cuda_device is not None:
                import torch

                torch.cuda.synchronize(scope.cuda_device)
                self._fold_cuda()
            self._scopes.remove(scope)
            if not self._scopes and self._sampler is not None:
                self._sampler.stop_event.set()
                self._sampler = None
        out = {
            "rss_peak_mb": _mb(scope.rss_peak) if scope.rss_peak else None,
            "rss_start_mb": _mb(scope.rss_start),
        }
        if scope.cuda_device is not None:
            out |= {
                "gpu_peak_allocated_mb": _mb(scope.cuda_alloc_peak),
                "gpu_peak_reserved_mb": _mb(scope.cuda_reserved_peak),
                "gpu_allocated_at_start_mb": _mb(scope.cuda_alloc_start),
            }
        return out


def _mb(value: int | None) -> float | None:
    return round(value / MB, 1) if value is not None else None


_TRACKER: PeakTracker | None = None


def tracker(rss_method: str = "auto") -> PeakTracker:
    """The one process-wide tracker, so nested scopes (the profiler's task, the perf task's
    points) see each other's resets: two trackers would erase each other's peaks. Asking for
    another method switches it only while no scope is open."""
    global _TRACKER
    if _TRACKER is None or (rss_method not in ("auto", _TRACKER.rss_method) and not _TRACKER._scopes):
        _TRACKER = PeakTracker(rss_method)  # a new method only while no scope is open
    return _TRACKER


def cuda_device_of(device: str | None):
    """The torch device to track for an encoder's ``meta.device``, or None when not CUDA."""
    if not device or not str(device).startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.device(device)
