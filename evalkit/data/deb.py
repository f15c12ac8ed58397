"""A Debian package's payload, read with the standard library (``ar`` + ``tar``), and the
Debian mirror to fetch it from.

manpages-zh's pages reach us as the Debian package ``manpages-zh`` (its build converts the
upstream pages to Simplified Chinese and renames some, so the upstream repository has other
bytes). A symbolic link inside the package (``bunzip2.1.gz -> bzip2.1.gz``) becomes a small
file holding the link's target, as in the reference raw-data folder; the manpages builder
skips such link stubs.

The mirror: ``EVALKIT_DEBIAN_MIRROR`` / ``paths.debian_mirror`` (a base URL, the folder that
holds ``pool/``), else the first Debian archive in this machine's apt sources
(``/etc/apt/sources.list``, ``/etc/apt/sources.list.d/*``).
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from evalkit.errors import DataError

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def ar_members(data: bytes, where: str) -> dict[str, bytes]:
    """The members of an ``ar`` archive (a ``.deb`` is one): name -> bytes."""
    if not data.startswith(b"!<arch>\n"):
        raise DataError(f"{where}: not a Debian package (no ar header)")
    out, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DataError(f"{where}: damaged ar header at byte {pos}") from None
        out[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are padded to an even length
    return out


def payload(deb: Path, wanted: set[str]) -> dict[str, bytes]:
    """Bytes of the payload files named in ``wanted`` (paths as in the package, without ``./``).
    A symbolic link gives its target as bytes; a hard link the bytes of the file it names."""
    members = ar_members(Path(deb).read_bytes(), str(deb))
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise DataError(f"{deb}: no data.tar.* inside (members: {', '.join(members)})")
    out, links = {}, {}
    with tarfile.open(fileobj=io.BytesIO(members[name]), mode="r:*") as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            if path not in wanted:
                continue
            if member.issym():
                out[path] = member.linkname.encode("utf-8")
            elif member.islnk():
                links[path] = member.linkname.removeprefix("./")
            elif member.isfile():
                out[path] = tar.extractfile(member).read()
    for path, target in links.items():
        if target in out:
            out[path] = out[target]
    return out


def apt_mirror(sources=None) -> str | None:
    """The first Debian archive (not a security archive) in this machine's apt sources."""
    files = []
    for item in APT_SOURCES if sources is None else sources:
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix in (".list", ".sources"))
        elif item.is_file():
            files.append(item)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri, suites in _entries(text, deb822=path.suffix == ".sources"):
            if uri.startswith(("http://", "https://")) and uri.rstrip("/").endswith("/debian") and \
                    not any("security" in s for s in suites):
                return uri.rstrip("/")
    return None


def _entries(text: str, *, deb822: bool) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every ``deb`` entry of a sources file, one-line or deb822 style."""
    out = []
    if not deb822:
        for line in text.splitlines():
            words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                out.append((words[1], [words[2]]))
        return out
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
            out += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
    return out
