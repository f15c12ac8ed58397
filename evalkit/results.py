"""Result files: mteb's TaskResult JSON plus an ``evalkit`` block, written atomically.

Layout ``<results_dir>/<model>/<revision>/<Task>.json`` with a ``model_meta.json`` beside,
the layout mteb's own ``load_results``/``ResultCache`` read (mteb ignores the extra key).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

NO_REVISION = "no_revision_available"
SECRET_WORDS = ("api_key", "apikey", "secret", "password", "authorization")
# "token" only as a key's last word (hf_token, access_token): max_tokens, tokens_per_s,
# real_tokens are figures, not secrets.
SECRET_SUFFIXES = ("token",)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def result_path(results_dir: Path, model_name: str, revision: str | None, task_name: str) -> Path:
    return Path(results_dir) / safe_name(model_name) / safe_name(revision or NO_REVISION) / f"{task_name}.json"


def safe_name(name: str) -> str:
    return name.replace("/", "__")


def write_result(results_dir: Path, model_name: str, revision: str | None, task_result: dict, evalkit_block: dict) -> Path:
    path = result_path(results_dir, model_name, revision, task_result["task_name"])
    meta_path = path.parent / "model_meta.json"
    if not meta_path.exists():
        atomic_write_json(meta_path, {"name": model_name, "revision": revision or NO_REVISION})
    atomic_write_json(path, {**task_result, "evalkit": redact(evalkit_block)})
    failure_path(results_dir, model_name, revision, task_result["task_name"]).unlink(missing_ok=True)
    return path


def read_result(path: Path) -> dict | None:
    """A complete result file, or None when missing or unreadable (e.g. foreign junk)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and "scores" in data and "evalkit" in data else None


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


# Failure records: why a (model, task) pair has no result, for the leaderboard and the user.
# They live in a subfolder, never as <model>/<revision>/*.json: mteb's load_results and
# ResultCache read every such file as a TaskResult. A later success deletes the record.
FAILURES_DIR = "_failures"


def failure_path(results_dir: Path, model_name: str, revision: str | None, task_name: str) -> Path:
    return result_path(results_dir, model_name, revision, task_name).parent / FAILURES_DIR / f"{task_name}.json"


def write_failure(results_dir: Path, model_name: str, revision: str | None, task_name: str, record: dict) -> Path:
    path = failure_path(results_dir, model_name, revision, task_name)
    atomic_write_json(path, redact({"evalkit_failure": 1, "model": model_name, "revision": revision, "task": task_name, **record}))
    return path


def read_failure(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("evalkit_failure") else None
