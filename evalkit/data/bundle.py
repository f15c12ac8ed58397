"""Bundles: the verified raw files in one tar, for a machine without the network.

``python -m evalkit.data bundle OUT.tar [TASK|all]`` writes them (paths as in the raw-data
folder, sorted, with fixed owners and times, so the same files give the same bundle);
``verify OUT.tar`` checks one against the lock; ``pull [TASK|all] --bundle OUT.tar`` takes the
needed files out of it on the other machine, each verified before it is placed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from evalkit.data.lock import Entry, load_lock
from evalkit.data.verify import Check
from evalkit.errors import DataError


def write_bundle(entries: list[Entry], raw_dir: Path, out: Path) -> int:
    """Write ``entries`` from ``raw_dir`` into the tar ``out`` (``.tar``, ``.tar.gz`` or ``.tgz``),
    each checked against the lock as it is read; returns the bytes written."""
    out = Path(out)
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                data = (raw_dir / entry.rel).read_bytes()
                actual = hashlib.sha256(data).hexdigest()
                if actual != entry.sha256:
                    raise DataError(f"{raw_dir / entry.rel}: expected sha256 {entry.sha256}, found {actual}: "
                                    "not bundled (python -m evalkit.data pull fetches it again)")
                info = tarfile.TarInfo(entry.rel)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, out)
    except FileNotFoundError as exc:
        raise DataError(f"cannot bundle: {exc.filename} is missing") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out.stat().st_size


def check_bundle(entries: list[Entry], bundle: Path) -> Check:
    """The bundle against the lock: missing or modified ``entries``, and members the lock does
    not know at all (extra)."""
    result = Check(Path(bundle))
    try:
        tar = tarfile.open(bundle)
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"{bundle}: cannot read the bundle ({exc})") from None
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        locked = {rel for src in load_lock().values() for rel in src.files}
        for entry in entries:
            member = members.get(entry.rel)
            if member is None:
                result.missing.append(entry)
                continue
            data = tar.extractfile(member).read()
            actual = hashlib.sha256(data).hexdigest()
            if actual == entry.sha256:
                result.ok.append(entry)
            else:
                result.modified.append((entry, actual, len(data)))
        result.extra = sorted(name for name in members if name not in locked)
    return result
