"""Files that are never seen half-written, and secrets that never reach a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SECRET_WORDS = ("api_key", "apikey", "secret", "password", "authorization")
# "token" only as a key's last word (hf_token, access_token): max_tokens, tokens_per_s,
# real_tokens are figures, not secrets.
SECRET_SUFFIXES = ("token",)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def redact(obj: Any) -> Any:
    """Replace values of secret-looking keys (api_key, token, …) with '***'."""
    if isinstance(obj, dict):
        return {
            k: ("***" if _is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def _is_secret_key(key: Any) -> bool:
    k = str(key).lower()
    secret = any(word in k for word in SECRET_WORDS) or k.endswith(SECRET_SUFFIXES)
    return secret and not k.endswith("_env")


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing, unreadable or not JSON (callers say why it matters)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def check_writable_folder(folder: Path, what: str, fix: str) -> None:
    """One clear error naming the folder, before any model loads."""
    import time

    from evalkit.errors import ConfigError

    probe = Path(folder) / f".evalkit-write-test-{time.time_ns()}"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what}: folder {folder} is not writable ({exc.strerror or exc}); set {fix}") from None
