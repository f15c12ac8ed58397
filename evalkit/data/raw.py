"""Raw data on first use: before a builder (or an MTEB mirror, or perf) reads the raw-data
folder, the locked files it needs are checked there and, if missing, pulled — after one line
saying what, from where and how big — unless offline. A modified file, or a file inside a
folder a builder reads that the lock does not know, stops the run with its name: task data is
never built from bytes other than the pinned ones (so a fingerprint always means the same data).
"""

from __future__ import annotations

import logging
from pathlib import Path

from evalkit.data import verify
from evalkit.data.lock import Entry, entries_for
from evalkit.data.pull import ROUTES, FetchSettings, pull
from evalkit.errors import DataError

log = logging.getLogger("evalkit.data")


def default_raw_dir() -> Path:
    from evalkit.schema.tasks import PathsConfig

    return PathsConfig.from_env().raw


def fetch_settings(paths) -> FetchSettings:
    """A :class:`evalkit.schema.PathsConfig`'s download settings (its None fields: the environment)."""
    return FetchSettings.resolve(paths.offline, paths.data_mirror, paths.debian_mirror)


def relative_needs(paths: list[Path], raw_dir: Path) -> list[str]:
    """Absolute raw paths (a builder's ``raw_paths``) -> paths under ``raw_dir``; paths outside it
    (the reference tokenizer inside its package) are not raw data and are left out."""
    out = []
    for path in paths:
        try:
            out.append(Path(path).relative_to(raw_dir).as_posix())
        except ValueError:
            continue
    return out


def ensure_raw(needs: list[str], raw_dir: Path | None, settings: FetchSettings | None = None, *, what: str) -> Path:
    """``raw_dir`` (default: :func:`default_raw_dir`) once it holds every locked file under
    ``needs`` (files or folders, relative to it) with the locked bytes; pulls what is missing."""
    raw_dir = Path(raw_dir) if raw_dir is not None else default_raw_dir()
    if not needs:
        return raw_dir
    entries = entries_for(needs)
    files = {e.rel for e in entries}
    state = verify.check(entries, raw_dir, [n for n in needs if n not in files])
    if state.modified or state.extra:
        raise DataError(
            f"the raw data of {what} in {raw_dir} differs from the sources lock; evalkit builds task data only "
            "from the pinned bytes:\n  " + "\n  ".join(state.problems()) +
            "\nRestore or remove these files (python -m evalkit.data pull all fetches modified files again; "
            "python -m evalkit.data verify checks a folder).")
    if not state.missing:
        return raw_dir
    settings = settings or FetchSettings.resolve()
    if settings.offline:
        raise DataError(offline_message(state.missing, raw_dir, what))
    log.info("%s needs raw data that is not in %s yet: fetching %s", what, raw_dir, describe(state.missing, settings))
    summary = pull(state.missing, raw_dir, settings)
    for line in summary.lines():
        log.info("%s", line)
    return raw_dir


def describe(missing: list[Entry], settings: FetchSettings) -> str:
    """``34.2 MB: 1,586 files of laws (24.9 MB, GitHub LawRefBook/Laws@2f4c5c2), …`` (+ the mirror)."""
    by_source: dict[str, list[Entry]] = {}
    for e in missing:
        by_source.setdefault(e.source.name, []).append(e)
    parts = []
    for name, entries in sorted(by_source.items()):
        src = entries[0].source
        size = src.deb_size if src.origin == "deb" else sum(e.size for e in entries)
        parts.append(f"{len(entries):,} files of {name} ({size / 1e6:.1f} MB, {src.where()})")
    total = sum(e.size for e in missing if e.source.origin != "deb") + sum(
        entries[0].source.deb_size for entries in by_source.values() if entries[0].source.origin == "deb")
    via = f" via the mirror {settings.mirror}" if settings.mirror else ""
    return f"{total / 1e6:.1f} MB: " + ", ".join(parts) + via


def offline_message(missing: list[Entry], raw_dir: Path, what: str) -> str:
    sources = sorted({e.source.name for e in missing})
    return (f"offline (EVALKIT_OFFLINE / paths.offline): {what} needs {len(missing):,} raw files that are not in "
            f"{raw_dir} (sources: {', '.join(sources)}). Fetch them where the network works with "
            f"python -m evalkit.data pull all (into this folder, or set EVALKIT_RAW_DATA to a verified copy); "
            f"{ROUTES}.")


def sources_summary(entries: list[Entry]) -> list[str]:
    """Per source of ``entries``: files, their size, the download, upstream, license; then the
    totals (``python -m evalkit.data sources [TASK]``)."""
    by_source: dict[str, list[Entry]] = {}
    for e in entries:
        by_source.setdefault(e.source.name, []).append(e)
    out, files, download = [], 0, 0
    for name, group in sorted(by_source.items()):
        src = group[0].source
        size = sum(e.size for e in group)
        fetch = src.deb_size if src.origin == "deb" else size
        files, download = files + len(group), download + fetch
        out.append(f"{name:<18} {len(group):>5,} files {size / 1e6:>5.1f} MB  download {fetch / 1e6:>5.1f} MB  "
                   f"{src.where():<46} {src.license}")
    out.append(f"{'total':<18} {files:>5,} files {sum(e.size for e in entries) / 1e6:>5.1f} MB  download {download / 1e6:>5.1f} MB")
    return out
