"""Download locked raw files into a raw-data folder, each verified before it counts.

pooch does the downloading: a registry of sha256 hashes, one retry, the HTTP transfer into a
temporary file that is moved into place only once its hash matches. Around it, this module
adds what pooch has no notion of: many files at once (threads), files taken out of a Debian
package, the mirror and bundle routes, progress over all files, and errors that name the
file, the URL, the hashes and the other routes. pooch cannot resume a transfer in the middle
(no HTTP ranges): a cut transfer is fetched again from its start, and a rerun fetches only the
files that are missing or wrong.

Nothing half is ever counted: downloads land in ``<raw>/.pull/<pid>/`` (outside every source folder),
and a file reaches its place in the raw-data folder by one rename, after its sha256 matched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.data import verify
from evalkit.data.lock import STAGING, Entry, Source
from evalkit.data.progress import PullProgress
from evalkit.data.transfer import fetch_one, run_jobs
from evalkit.errors import DataError

log = logging.getLogger("evalkit.data")

ROUTES = ("other routes: EVALKIT_DATA_MIRROR=<base URL> (a mirror laid out as <base>/<host>/<path>), or a bundle "
          "made where the network works (python -m evalkit.data bundle evalkit-data.tar), used here with "
          "python -m evalkit.data pull all --bundle evalkit-data.tar")


@dataclass(frozen=True)
class FetchSettings:
    offline: bool = False  # EVALKIT_OFFLINE / paths.offline: never download
    mirror: str | None = None  # EVALKIT_DATA_MIRROR / paths.data_mirror
    debian_mirror: str | None = None  # EVALKIT_DEBIAN_MIRROR / paths.debian_mirror; else the apt sources
    timeout_s: float = 60.0  # EVALKIT_DATA_TIMEOUT: connect and read timeout of one request
    workers: int = 8

    @classmethod
    def resolve(cls, offline: bool | None = None, mirror: str | None = None, debian_mirror: str | None = None) -> FetchSettings:
        """Given values win; the environment fills the rest."""
        env = os.environ
        if offline is None:
            offline = env.get("EVALKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        try:
            timeout = float(env.get("EVALKIT_DATA_TIMEOUT") or 60)
        except ValueError:
            raise DataError(f"EVALKIT_DATA_TIMEOUT must be a number of seconds, got {env['EVALKIT_DATA_TIMEOUT']!r}") from None
        return cls(offline=offline, mirror=mirror or env.get("EVALKIT_DATA_MIRROR") or None,
                   debian_mirror=debian_mirror or env.get("EVALKIT_DEBIAN_MIRROR") or None, timeout_s=timeout)

    def debian_base(self) -> str | None:
        if self.debian_mirror or self.mirror:
            return self.debian_mirror
        from evalkit.data.deb import apt_mirror

        return apt_mirror()


@dataclass
class Summary:
    folder: Path
    fetched: dict[str, int] = field(default_factory=dict)  # source -> files fetched now
    present: dict[str, int] = field(default_factory=dict)  # source -> files already there and verified
    downloaded_bytes: int = 0
    origins: dict[str, str] = field(default_factory=dict)  # source -> where its files came from
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = []
        for name in sorted(set(self.fetched) | set(self.present)):
            got, had = self.fetched.get(name, 0), self.present.get(name, 0)
            where = f" from {self.origins[name]}" if got else ""
            out.append(f"  {name}: {got:,} fetched{where}, {had:,} already verified")
        rate = self.downloaded_bytes / self.seconds / 1e6 if self.seconds > 0 else 0
        out.append(f"  {sum(self.fetched.values()):,} files, {self.downloaded_bytes / 1e6:.1f} MB downloaded in "
                   f"{self.seconds:.1f} s ({rate:.1f} MB/s) into {self.folder}")
        return out


def pull(entries: list[Entry], raw_dir: Path, settings: FetchSettings, *, bundle: Path | None = None,
         progress: str = "auto") -> Summary:
    """Make every entry present and verified in ``raw_dir``; a rerun fetches only what is missing or wrong."""
    raw_dir, t0 = Path(raw_dir), time.perf_counter()
    state = verify.check(entries, raw_dir)
    summary = Summary(raw_dir)
    for e in state.ok:
        summary.present[e.source.name] = summary.present.get(e.source.name, 0) + 1
    todo = state.missing + [e for e, _, _ in state.modified]
    if todo:
        staging = _prepare(raw_dir)
        try:
            if bundle is not None:
                _from_bundle(todo, raw_dir, staging, Path(bundle), summary)
            else:
                _download(todo, raw_dir, staging, settings, summary, progress)
        finally:
            _remove_staging(staging)
    summary.seconds = time.perf_counter() - t0
    return summary


def _prepare(raw_dir: Path) -> Path:
    """This process's staging folder ``<raw>/.pull/<pid>`` (parallel pulls never share one);
    those of processes that died mid-pull are removed (they hold nothing that counted)."""
    staging = raw_dir / STAGING / str(os.getpid())
    try:
        staging.mkdir(parents=True, exist_ok=True)
        for other in staging.parent.iterdir():
            if other != staging and not _alive(other.name):
                shutil.rmtree(other, ignore_errors=True)
        probe = tempfile.NamedTemporaryFile(dir=staging, delete=True)
        probe.close()
    except OSError as exc:
        raise DataError(f"cannot write the raw-data folder {raw_dir} ({exc.strerror}): set EVALKIT_RAW_DATA "
                        "(or paths.raw_data) or EVALKIT_CACHE_DIR to a folder you can write") from None
    return staging


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def publish(staged: Path, target: Path) -> None:
    """Move a verified file from the staging folder into place: one rename, with the permissions a
    new file gets here (temporary files are private)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(staged, 0o666 & ~_UMASK)
    os.replace(staged, target)
    verify.forget(target)


def _remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()  # .pull itself, unless another pull is using it
    except OSError:
        pass


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def place(data: bytes, entry: Entry, raw_dir: Path, staging: Path, origin: str) -> None:
    """Verify ``data`` against the lock, then write it into place atomically."""
    import hashlib

    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise DataError(f"{entry.rel}: refused: expected sha256 {entry.sha256} ({entry.size:,} bytes), "
                        f"got {actual} ({len(data):,} bytes) from {origin}")
    with tempfile.NamedTemporaryFile(dir=staging, delete=False) as tmp:
        tmp.write(data)
    try:
        publish(Path(tmp.name), raw_dir / entry.rel)
    finally:
        if os.path.exists(tmp.name):
            os.remove(tmp.name)


def _from_bundle(todo: list[Entry], raw_dir: Path, staging: Path, bundle: Path, summary: Summary) -> None:
    try:
        tar = tarfile.open(bundle)
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"{bundle}: cannot read the bundle ({exc})") from None
    with tar:
        names = set(tar.getnames())
        absent = [e.rel for e in todo if e.rel not in names]
        if absent:
            raise DataError(f"{bundle}: the bundle lacks {len(absent):,} needed files ({', '.join(absent[:3])}"
                            f"{', …' if len(absent) > 3 else ''}); make it with python -m evalkit.data bundle OUT.tar all")
        for entry in todo:
            place(tar.extractfile(entry.rel).read(), entry, raw_dir, staging, f"the bundle {bundle}")
            _count(summary, entry.source, f"the bundle {bundle}")


def _count(summary: Summary, source: Source, origin: str, nbytes: int = 0) -> None:
    summary.fetched[source.name] = summary.fetched.get(source.name, 0) + 1
    summary.origins[source.name] = origin
    summary.downloaded_bytes += nbytes


def _download(todo, raw_dir, staging, settings: FetchSettings, summary: Summary, progress_mode: str) -> None:
    if settings.offline:
        raise DataError(f"offline (EVALKIT_OFFLINE / paths.offline) and {len(todo):,} locked files are missing; {ROUTES}")
    github = [e for e in todo if e.source.origin == "github"]
    debs: dict[str, list[Entry]] = {}
    for e in todo:
        if e.source.origin == "deb":
            debs.setdefault(e.source.name, []).append(e)
    debian_base = settings.debian_base() if debs else None
    deb_urls = {name: es[0].source.deb_url(debian_base, settings.mirror) for name, es in debs.items()}  # fails before any download
    jobs = [(_fetch_github, [e]) for e in github] + [(_fetch_deb, entries) for entries in debs.values()]
    total = sum(e.size for e in github) + sum(es[0].source.deb_size for es in debs.values())
    progress = PullProgress(len(todo), total, mode=progress_mode)
    for e in github:  # pooch creates a missing parent folder without exist_ok: no races between threads
        (staging / e.rel).parent.mkdir(parents=True, exist_ok=True)
    cancel = threading.Event()
    ctx = dict(raw_dir=raw_dir, staging=staging, settings=settings, summary=summary, progress=progress, routes=ROUTES,
               cancel=cancel, lock=threading.Lock(), deb_urls=deb_urls)
    try:
        run_jobs(jobs, ctx, settings.workers)
    finally:
        cancel.set()
        progress.close()


def _fetch_github(entries: list[Entry], ctx: dict) -> None:
    (entry,) = entries
    settings = ctx["settings"]
    url = entry.source.url(entry.rel, settings.mirror)
    staged = fetch_one(entry.rel, entry.sha256, url, ctx, entry.size)
    publish(staged, ctx["raw_dir"] / entry.rel)  # verified by pooch; same file system: one rename
    with ctx["lock"]:
        origin = f"the mirror {settings.mirror}" if settings.mirror else url.split(entry.source.version)[0] + entry.source.version
        _count(ctx["summary"], entry.source, origin, entry.size)
        ctx["progress"].file_done(entry.size)


def _fetch_deb(entries: list[Entry], ctx: dict) -> None:
    from evalkit.data.deb import payload

    src = entries[0].source
    url = ctx["deb_urls"][src.name]
    key = src.pool_path.rsplit("/", 1)[-1]
    deb_path = fetch_one(key, src.deb_sha256, url, ctx, src.deb_size)
    wanted = {src.upstream_path(e.rel): e for e in entries}
    files = payload(deb_path, set(wanted))
    absent = sorted(set(wanted) - set(files))
    if absent:
        raise DataError(f"{url}: the package lacks {', '.join(absent[:3])}: not the locked {src.upstream} {src.version}")
    for member, entry in wanted.items():
        place(files[member], entry, ctx["raw_dir"], ctx["staging"], url)
        with ctx["lock"]:
            _count(ctx["summary"], src, url)
            ctx["progress"].file_done(0)
    with ctx["lock"]:
        ctx["summary"].downloaded_bytes += src.deb_size
        ctx["progress"].bytes_done(src.deb_size)
    deb_path.unlink(missing_ok=True)
