"""Check a raw-data folder against the sources lock: which locked files are there with the
right bytes, which are missing, which were modified (named with the expected and the actual
sha256), and which files lie inside a folder a builder reads without being locked (an extra
file would change what the builder builds, so it is named, never silently built in).

A file once hashed is remembered for the process by (size, mtime), so a run that builds many
subsets from one folder hashes each file once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.data.lock import STAGING, Entry, load_lock, sha256_file

_HASHED: dict[str, tuple[int, int, str]] = {}  # absolute path -> (size, mtime_ns, sha256)


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = str(path)
    cached = _HASHED.get(key)
    if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
        return cached[2]
    digest = sha256_file(path)
    _HASHED[key] = (st.st_size, st.st_mtime_ns, digest)
    return digest


@dataclass
class Check:
    folder: Path
    ok: list[Entry] = field(default_factory=list)
    missing: list[Entry] = field(default_factory=list)
    modified: list[tuple[Entry, str, int]] = field(default_factory=list)  # (entry, actual sha256, actual size)
    extra: list[str] = field(default_factory=list)  # paths under the raw-data folder

    @property
    def clean(self) -> bool:
        return not (self.missing or self.modified or self.extra)

    def problems(self, limit: int = 10) -> list[str]:
        """One line per modified or extra file (the first ``limit`` of each), then the missing count."""
        lines = [f"modified: {self.folder / e.rel}: expected sha256 {e.sha256} ({e.size:,} bytes), "
                 f"found {sha} ({size:,} bytes)" for e, sha, size in self.modified[:limit]]
        lines += _more(self.modified, limit, "modified files")
        lines += [f"extra: {self.folder / rel}: not in the sources lock, but inside a folder a builder reads"
                  for rel in self.extra[:limit]]
        lines += _more(self.extra, limit, "extra files")
        if self.missing:
            names = ", ".join(e.rel for e in self.missing[:3]) + (", …" if len(self.missing) > 3 else "")
            lines.append(f"missing: {len(self.missing):,} locked files ({names})")
        return lines


def _more(items: list, limit: int, what: str) -> list[str]:
    return [f"… and {len(items) - limit:,} more {what}"] if len(items) > limit else []


def check(entries: list[Entry], raw_dir: Path, folders: list[str] = ()) -> Check:
    """Compare ``raw_dir`` with ``entries``; ``folders`` (paths under ``raw_dir``) are the
    folders builders read as a whole: any file inside them that the lock does not know is extra."""
    raw_dir = Path(raw_dir)
    result = Check(raw_dir)
    for entry in entries:
        path = raw_dir / entry.rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            result.missing.append(entry)
            continue
        sha = file_sha256(path) if size == entry.size else "(not hashed: size differs)"
        if sha == entry.sha256:
            result.ok.append(entry)
        else:
            result.modified.append((entry, sha, size))
    locked = {e.rel for e in entries} | {rel for src in load_lock().values() for rel in src.files}
    for folder in folders:
        root = raw_dir / folder
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != STAGING]
            for name in filenames:
                rel = (Path(dirpath) / name).relative_to(raw_dir).as_posix()
                if rel not in locked:
                    result.extra.append(rel)
    result.extra.sort()
    return result


def forget(path: Path) -> None:
    """Drop a file's remembered hash (after it was replaced)."""
    _HASHED.pop(str(path), None)
