"""The sources lock: where every raw file of the built-in tasks comes from, pinned and hashed.

``sources.lock.json`` (in this package) lists, for each source folder of the raw-data folder,
its upstream (a GitHub repository at a commit, or one Debian package at a version), its
license, and the sha256 and size of every file, keyed by the path under the raw-data folder
(``laws/宪法/宪法.md``). It hashes files, never GitHub's generated archives: those archives'
bytes are not stable over time. ``python -m evalkit.data lock --from DIR`` writes it from a
raw-data folder and the table below; a test checks it against the reference folder.

URLs. A GitHub file is ``https://raw.githubusercontent.com/<repo>/<commit>/<path>``. The
Debian package comes from a Debian mirror's ``<base>/<pool path>`` (the base is the user's:
``EVALKIT_DEBIAN_MIRROR`` or the machine's apt sources, see :mod:`evalkit.data.deb`). With
``EVALKIT_DATA_MIRROR=<base>`` every upstream ``https://HOST/PATH`` is fetched as
``<base>/HOST/PATH``, and the package as ``<base>/debian/<pool path>``: one static file server
laid out that way mirrors everything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from evalkit.errors import DataError

LOCK_PATH = Path(__file__).with_name("sources.lock.json")
LOCK_FORMAT = 1
GITHUB_RAW = "https://raw.githubusercontent.com"
STAGING = ".pull"  # downloads in progress, inside the raw-data folder but outside every source folder


@dataclass(frozen=True)
class Source:
    name: str  # its folder in the raw-data folder
    origin: str  # "github" | "deb"
    upstream: str  # "owner/repo" | the Debian package name
    version: str  # commit SHA | Debian version
    license: str
    # local path prefix (relative to the source folder) -> upstream path prefix; the longest match wins
    paths: dict[str, str]
    pool_path: str = ""  # deb: the package's path under a Debian mirror (pool files never change)
    deb_sha256: str = ""
    deb_size: int = 0
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # raw-folder path -> (sha256, size)

    def upstream_path(self, rel: str) -> str:
        """``laws/宪法/宪法.md`` -> its path in the upstream repository (or the package's payload)."""
        local = rel.removeprefix(self.name + "/")
        for prefix in sorted(self.paths, key=len, reverse=True):
            is_folder = prefix == "" or prefix.endswith("/")
            if local == prefix or (is_folder and local.startswith(prefix)):
                return self.paths[prefix] + local[len(prefix):]
        raise DataError(f"{rel}: no upstream path for it in source {self.name!r}")

    def url(self, rel: str, mirror: str | None = None) -> str:
        """The file's URL (GitHub sources only; a deb source's files come out of :meth:`deb_url`)."""
        url = f"{GITHUB_RAW}/{self.upstream}/{self.version}/{quote(self.upstream_path(rel))}"
        return mirrored(url, mirror)

    def deb_url(self, debian_mirror: str | None, mirror: str | None = None) -> str:
        if mirror:
            return f"{mirror.rstrip('/')}/debian/{self.pool_path}"
        if not debian_mirror:
            raise DataError(
                f"source {self.name!r} comes from the Debian package {self.upstream} {self.version}: set "
                "EVALKIT_DEBIAN_MIRROR (or paths.debian_mirror) to a Debian mirror's base URL (the folder that "
                "holds pool/), or EVALKIT_DATA_MIRROR to a mirror of every source, or use a bundle")
        return f"{debian_mirror.rstrip('/')}/{self.pool_path}"

    def where(self) -> str:
        """Short provenance for messages: ``GitHub LawRefBook/Laws@2f4c5c2``."""
        if self.origin == "github":
            return f"GitHub {self.upstream}@{self.version[:7]}"
        return f"Debian package {self.upstream} {self.version}"

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files.values())


def mirrored(url: str, mirror: str | None) -> str:
    """``https://HOST/PATH`` -> ``<mirror>/HOST/PATH`` (unchanged without a mirror)."""
    if not mirror:
        return url
    return f"{mirror.rstrip('/')}/{url.split('://', 1)[1]}"


# What the lock is made from: upstream, version, license and path mapping of every source.
# Verified by hand against the upstream repositories at these commits (every file's bytes) and,
# for manpages-zh, against the payload of the Debian package itself (see docs/data.md).
SOURCES = (
    Source("banking77", "github", "PolyAI-LDN/task-specific-datasets", "57ec275d8078af65b7731c2a98be812d844a6d6b",
           "CC-BY-4.0", {"": "banking_data/", "LICENSE": "LICENSE"}),
    Source("cosqa", "github", "Jun-jie-Huang/CoCLR", "14ebcacf9e9bc3e7109102632bc63047876f27d2",
           "code MIT; data: Computational Use of Data Agreement (C-UDA)", {"": "data/search/", "LICENSE": "LICENSE"}),
    Source("drcd", "github", "DRCKnowledgeTeam/DRCD", "b944790de5af02c5fbb7cd9cb1473d27d169eebf",
           "CC-BY-SA-3.0 (adapted from Wikipedia)", {"": ""}),
    Source("laws", "github", "LawRefBook/Laws", "2f4c5c23716267af9dbebbbbd6cbbf732b101981",
           "PRC statutes and judicial documents are outside copyright (PRC Copyright Law, art. 5); "
           "the repository has no LICENSE file", {"": ""}),
    Source("manpages-zh", "deb", "manpages-zh", "1.6.4.0-1", "GFDL-1.2+ (some pages GPL-2); see manpages-zh/copyright",
           {"zh_CN/": "usr/share/man/zh_CN/", "copyright": "usr/share/doc/manpages-zh/copyright"},
           pool_path="pool/main/m/manpages-zh/manpages-zh_1.6.4.0-1_all.deb",
           deb_sha256="81bae29495f6445db290e3f329f1203eb19b651c2a7ea165b74ebdc853a32ac1", deb_size=4937812),
    Source("python-docs-zh-cn", "github", "python/python-docs-zh-cn", "693cf6be2bc17f3d50ee21fe207c6964f3fab130",
           "translations CC0 (see the upstream README); the source documentation PSF-2.0", {"": ""}),
    Source("stsb", "github", "PhilipMay/stsb-multi-mt", "30de0dec4ee199b7f42351d3f1a0b19592955385",
           "as the STS benchmark (see stsb/LICENSE)", {"": "data/", "LICENSE": "LICENSE"}),
    Source("tatoeba", "github", "facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821",
           "Tatoeba terms of use (CC-BY 2.0 FR)", {"": "data/tatoeba/v1/"}),
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_lock(raw_dir: Path) -> dict[str, Source]:
    """The lock of every file under each source's folder of ``raw_dir``."""
    raw_dir = Path(raw_dir)
    out = {}
    for src in SOURCES:
        folder = raw_dir / src.name
        if not folder.is_dir():
            raise DataError(f"{folder}: source folder missing (every source must be there to write the lock)")
        files = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(raw_dir).as_posix()
            src.upstream_path(rel)  # every file must map upstream
            files[rel] = (sha256_file(path), path.stat().st_size)
        out[src.name] = Source(**{**src.__dict__, "files": files})
    return out


def lock_text(sources: dict[str, Source]) -> str:
    """The lock as JSON, one file per line (readable diffs when a source moves to a new commit)."""
    lines = ["{", f' "format": {LOCK_FORMAT},',
             ' "note": "written by python -m evalkit.data lock --from DIR; paths are relative to the raw-data folder",',
             ' "sources": {']
    for i, src in enumerate(sources.values()):
        meta = {k: v for k, v in src.__dict__.items() if k not in ("name", "files") and v not in ("", 0)}
        lines.append(f"  {json.dumps(src.name)}: {{")
        lines += [f"   {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in meta.items()]
        lines.append('   "files": {')
        items = list(src.files.items())
        lines += [f"    {json.dumps(rel, ensure_ascii=False)}: {json.dumps(list(v))}{',' if j < len(items) - 1 else ''}"
                  for j, (rel, v) in enumerate(items)]
        lines.append("   }")
        lines.append("  }" + ("," if i < len(sources) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def parse_lock(text: str, where: str = "sources.lock.json") -> dict[str, Source]:
    try:
        data = json.loads(text)
        if data.get("format") != LOCK_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {LOCK_FORMAT}")
        return {name: Source(name=name, **{**meta, "files": {rel: (sha, size) for rel, (sha, size) in meta["files"].items()}})
                for name, meta in data["sources"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: not a valid sources lock ({exc})") from None


@lru_cache(maxsize=1)
def load_lock() -> dict[str, Source]:
    return parse_lock(LOCK_PATH.read_text(encoding="utf-8"), str(LOCK_PATH))


@dataclass(frozen=True)
class Entry:
    rel: str  # path under the raw-data folder
    sha256: str
    size: int
    source: Source


def entries_for(needs: list[str], sources: dict[str, Source] | None = None) -> list[Entry]:
    """Locked files under each needed path (a file, or a folder: every file below it), sorted.
    A needed path the lock does not know is an error: nothing unlocked is ever read."""
    sources = load_lock() if sources is None else sources
    by_rel = {rel: Entry(rel, sha, size, src) for src in sources.values() for rel, (sha, size) in src.files.items()}
    out: dict[str, Entry] = {}
    for need in needs:
        need = need.strip("/")
        hits = [e for rel, e in by_rel.items() if rel == need or rel.startswith(need + "/")]
        if not hits:
            raise DataError(f"{need}: not in the sources lock ({LOCK_PATH.name}); locked sources: {', '.join(sorted(sources))}")
        out.update((e.rel, e) for e in hits)
    return [out[rel] for rel in sorted(out)]


def all_needs(sources: dict[str, Source] | None = None) -> list[str]:
    return sorted(load_lock() if sources is None else sources)
