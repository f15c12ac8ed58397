"""Check the sources lock against the upstreams themselves, not against our raw-data copy:
every locked GitHub file must be the blob at the pinned commit, every locked manpages-zh file
the payload of the pinned Debian package.

    python scripts/check_lock_upstream.py --repos DIR --deb manpages-zh_1.6.4.0-1_all.deb

``DIR`` holds a git clone (or bare repository) of each GitHub upstream, as ``DIR/<owner>+<name>``
(a ``repo`` folder inside it also works) or ``DIR/<name>``; ``--deb`` is the package file
(``apt-get download manpages-zh=1.6.4.0-1``). Prints one line per source and exits 1 if any
file differs or is missing upstream. docs/data.md quotes its result.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

from evalkit.data.deb import payload
from evalkit.data.lock import load_lock, sha256_file


def find_repo(root: Path, upstream: str) -> Path:
    owner, name = upstream.split("/")
    for candidate in (root / f"{owner}+{name}" / "repo", root / f"{owner}+{name}", root / name):
        if candidate.exists():
            return candidate
    raise SystemExit(f"no clone of {upstream} under {root} (looked for {owner}+{name} and {name})")


def check_github(src, git_dir: Path) -> list[str]:
    """Locked files whose bytes differ from (or are missing in) the blob at the pinned commit."""
    bad = []
    proc = subprocess.Popen(["git", "-C", str(git_dir), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for rel, (sha, size) in src.files.items():
        proc.stdin.write(f"{src.version}:{src.upstream_path(rel)}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if header[-1] == b"missing":
            bad.append(f"{rel}: missing upstream")
            continue
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)  # the newline after each object
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
            bad.append(f"{rel}: other bytes upstream")
    proc.stdin.close()
    proc.wait()
    return bad


def check_deb(src, deb: Path) -> list[str]:
    if sha256_file(deb) != src.deb_sha256:
        return [f"{deb}: not the locked package (sha256 differs)"]
    wanted = {src.upstream_path(rel): rel for rel in src.files}
    files = payload(deb, set(wanted))
    return [f"{rel}: {'missing in' if member not in files else 'other bytes in'} the package" for member, rel in wanted.items()
            if member not in files or hashlib.sha256(files[member]).hexdigest() != src.files[rel][0]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=Path, required=True)
    parser.add_argument("--deb", type=Path, required=True)
    args = parser.parse_args()
    failed = 0
    for src in load_lock().values():
        bad = check_github(src, find_repo(args.repos, src.upstream)) if src.origin == "github" else check_deb(src, args.deb)
        failed += len(bad)
        print(f"{src.name:<18} {len(src.files):>5,} files vs {src.where()}: {'OK' if not bad else f'{len(bad)} differ'}")
        for line in bad[:10]:
            print(f"    {line}")
    print(f"{sum(len(s.files) for s in load_lock().values()):,} locked files, {failed} differ from their upstream")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
