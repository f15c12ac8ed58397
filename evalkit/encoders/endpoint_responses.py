"""What an OpenAI-compatible embeddings server answers, checked: the response body (one
finite vector per input, ordered by ``index``, one dimension), ``Retry-After``, the server's
error message, URLs safe to print (no user:password part), the error that names a rejected
input, and the API key's source (never printed)."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from evalkit.errors import EndpointError


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a valid embeddings response."""


def display_url(url: str) -> str:
    """The URL without any user:password part (safe for messages)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_embeddings(body: str, n_inputs: int) -> tuple[np.ndarray, int | None]:
    """Vectors in input order (by ``index``) and prompt tokens, or MalformedResponse."""
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(f"body is not valid JSON ({exc}; {len(body)} bytes)") from None
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list):
        raise MalformedResponse("no 'data' list in the response")
    if len(data) != n_inputs:
        raise MalformedResponse(f"{len(data)} vectors for {n_inputs} inputs")
    rows: list[Any] = [None] * n_inputs
    for pos, item in enumerate(data):
        index = item.get("index", pos) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < n_inputs or rows[index] is not None:
            raise MalformedResponse(f"bad or repeated index {index!r} at position {pos}")
        emb = item.get("embedding")
        if isinstance(emb, str):  # encoding_format=base64 servers
            emb = np.frombuffer(base64.b64decode(emb), dtype=np.float32)
        if emb is None or len(emb) == 0:
            raise MalformedResponse(f"empty embedding at index {index}")
        rows[index] = emb
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise MalformedResponse(f"vectors of different lengths {sorted(dims)} in one response")
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MalformedResponse(f"embedding values are not numbers ({exc})") from None
    if not np.isfinite(vectors).all():
        raise MalformedResponse("NaN or inf in the vectors")
    usage = obj.get("usage") if isinstance(obj, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return vectors, tokens if isinstance(tokens, int) else None


def server_message(exc) -> str:
    """The server's error message, short."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        return str(msg)[:300]
    return str(getattr(exc, "message", exc))[:300]


# Status codes worth another try: the server is busy or broken, not the request.
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# Status codes that mean "this input is not acceptable" (too long, bad characters).
INPUT_REJECTED_STATUS = {400, 413, 422}


@dataclass
class Answer:
    vectors: np.ndarray
    seconds: float  # latency of the successful attempt
    prompt_tokens: int | None


@dataclass
class Fault:
    """What went wrong with one attempt."""

    kind: str  # timeout | connection | malformed | http_<status>, as counted in stats
    message: str
    retry_after: float | None = None  # the server's Retry-After, in seconds
    status: int | None = None  # HTTP status, for HTTP errors
    refused: bool = False  # the connection was refused: nothing listens there


def resolve_api_key(cfg) -> str:
    if cfg.api_key is not None and cfg.api_key.get_secret_value():
        return cfg.api_key.get_secret_value()
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env)
        if value:
            return value
    return "EMPTY"  # local servers ignore it; the client insists on some string


def finish_vectors(vectors: np.ndarray, dimension: int | None, normalize: bool) -> np.ndarray:
    """Client-side Matryoshka truncation and normalisation, when configured."""
    if dimension is not None:
        vectors = vectors[:, :dimension]
    if normalize or dimension is not None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    return vectors.astype(np.float32, copy=False)


def rejection_error(url: str, cfg, fault: Fault, inputs: list[str], offset: int, culprit: int | None) -> EndpointError:
    """The error for a non-retryable 4xx, naming the API key's source, the URL or the input."""
    status, message = fault.status, fault.message
    if status in (401, 403):
        source = f"environment variable {cfg.api_key_env}" if cfg.api_key_env else "model.api_key"
        return EndpointError(f"{url}: {message}; the server refused the API key (from {source})")
    if status == 404:
        return EndpointError(f"{url}: {message}; check model.base_url (ends in /v1?) and the served model name {cfg.model!r}")
    if status in INPUT_REJECTED_STATUS and culprit is not None:
        return EndpointError(
            f"{url} rejected input {offset + culprit} ({len(inputs[culprit])} characters): {message}. "
            "If it is too long, shorten it, set model.max_input_chars (client-side truncation) "
            "or enable the server's own truncation via model.extra_body."
        )
    return EndpointError(f"{url}: {message} for inputs {offset}..{offset + len(inputs) - 1}")
