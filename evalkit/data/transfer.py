"""Transfers for a pull: pooch fetches one file (registry hash, one retry, a temporary file
moved into place only once its hash matches), this module runs many at once on threads and
turns every failure into one :class:`DataError` that names the file, the URL and the reason."""

from __future__ import annotations

import errno
import logging
import threading
from pathlib import Path

from evalkit.data.lock import sha256_file
from evalkit.errors import DataError

log = logging.getLogger("evalkit.data")


class Cancelled(Exception):
    """Raised inside a transfer when the pull stops (an error elsewhere, or Ctrl-C)."""


def run_jobs(jobs: list, ctx: dict, workers: int) -> None:
    """Run ``jobs`` on daemon threads; the first error stops the rest (each at its next chunk).
    On Ctrl-C nothing waits for a stalled transfer: the process may exit at once, and what
    those threads leave in the staging folder never counted."""
    queue = list(reversed(jobs))
    errors: list[BaseException] = []
    running = [0]
    changed = threading.Condition()

    def worker():
        while True:
            with changed:
                if not queue or errors or ctx["cancel"].is_set():
                    running[0] -= 1
                    changed.notify_all()
                    return
                fn, entries = queue.pop()
            try:
                fn(entries, ctx)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                with changed:
                    errors.append(exc)
                ctx["cancel"].set()

    n = max(1, min(workers, len(jobs)))
    running[0] = n
    for i in range(n):
        threading.Thread(target=worker, name=f"evalkit-pull-{i}", daemon=True).start()
    with changed:
        while running[0] > 0:
            changed.wait(timeout=0.2)  # a timeout keeps Ctrl-C deliverable
    if errors:
        first = next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
        raise first


def fetch_one(key: str, known_sha: str, url: str, ctx: dict, size: int) -> Path:
    """One file through pooch into the staging folder; errors become one clear DataError."""
    import pooch
    import requests

    pooch.get_logger().setLevel(logging.WARNING)  # its per-file INFO lines; retries are reported below
    store = pooch.create(path=ctx["staging"], base_url="", registry={key: f"sha256:{known_sha}"}, urls={key: url},
                         retry_if_failed=1)
    downloader = _Downloader(ctx, size, key)
    try:
        return Path(store.fetch(key, downloader=downloader))
    except Cancelled:
        raise
    except ValueError:  # pooch: the hash of the downloaded bytes differs (on the last attempt)
        sha, got = downloader.last
        raise DataError(f"{key}: refused after {downloader.attempts} attempts: expected sha256 {known_sha} "
                        f"({size:,} bytes), got {sha} ({got:,} bytes) from {url}; the server sends other bytes "
                        f"than the pinned upstream file; {ctx['routes']}") from None
    except requests.exceptions.RequestException as exc:
        raise DataError(f"cannot download {url} (after one retry): {_reason(exc, ctx['settings'])}; {ctx['routes']}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(f"no space left on the device of {ctx['raw_dir']} while writing {key}; nothing half "
                            "written was kept: free space and rerun (finished files are kept)") from None
        raise


def _reason(exc, settings) -> str:
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return f"no answer within {settings.timeout_s:g} s (EVALKIT_DATA_TIMEOUT)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection was cut mid-file"
    return f"no connection ({type(exc).__name__})"


class _Downloader:
    """pooch's HTTP downloader, plus: progress into the shared counter, stop on cancel, the
    sha256 of what arrived (for the refusal message) and a line when an attempt is retried."""

    def __init__(self, ctx: dict, size: int, name: str):
        self.ctx, self.size, self.name = ctx, size, name
        self.attempts, self.last, self.error = 0, ("(nothing arrived)", 0), None

    def __call__(self, url, output_file, pooch_obj):
        import pooch

        self.attempts += 1
        if self.attempts > 1:
            why = self.error or f"refused: expected sha256 {pooch_obj.registry[self.name][7:]}, got {self.last[0]}"
            log.warning("%s: %s; fetching it again", self.name, why)
        bar = self.ctx["progress"].file_bar(self.size, self.ctx["cancel"], Cancelled)
        http = pooch.HTTPDownloader(progressbar=bar, timeout=self.ctx["settings"].timeout_s)
        try:
            http(url, output_file, pooch_obj)
        except Cancelled:
            raise
        except Exception as exc:
            self.error = _reason(exc, self.ctx["settings"]) if _is_request_error(exc) else str(exc)
            raise
        finally:
            bar.finish()
        self.error = None
        self.last = (sha256_file(Path(output_file)), Path(output_file).stat().st_size)


def _is_request_error(exc) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.RequestException)
