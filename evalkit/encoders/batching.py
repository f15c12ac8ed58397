"""Token-budget batching: the one place where padding waste and out-of-memory back-off live.

Texts are tokenised once (by the backend: the same ids are the forward pass's input),
sorted longest first and packed so that ``rows x longest row`` — what the device actually
computes, padding included — stays within a token budget, and a batch is cut early when its
padding would exceed ``1 - min_efficiency`` of that compute (short-text tasks span many
lengths: one budget-sized batch of them would be mostly padding). A 30k-token document then
runs alone while 10-token queries run hundreds at a time, and both keep the device busy.
Longest first means an out-of-memory error, if any, shows up on the first batch.

``iter_batches`` executes a plan, batch by batch (vectors stream up to the cache). When a batch raises CUDA
out-of-memory it is split in half and retried, and every later batch at least that
large is split before it is tried; a single text that does not fit is a clear error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("evalkit.encoders.batching")


@dataclass
class Batching:
    """How a local backend packs batches (from ``encode:``; all speed-only)."""

    token_budget: int | None = None  # padded tokens per forward; None: batch_size x max length
    max_batch_texts: int | None = None
    min_efficiency: float = 0.9
    prefetch: bool = True

    @classmethod
    def from_config(cls, encode_cfg) -> Batching:
        """The ``encode:`` section's batching fields."""
        return cls(token_budget=encode_cfg.token_budget, max_batch_texts=encode_cfg.max_batch_texts,
                   min_efficiency=encode_cfg.min_padding_efficiency, prefetch=encode_cfg.prefetch)


def effective_lengths(lengths: Sequence[int], max_tokens: int | None) -> list[int]:
    """Token counts after truncation to the model's limit (what a batch row really holds)."""
    if max_tokens is None:
        return [max(1, int(n)) for n in lengths]
    return [max(1, min(int(n), max_tokens)) for n in lengths]


def plan_token_batches(
    lengths: Sequence[int],
    token_budget: int,
    *,
    max_tokens: int | None = None,
    max_batch_texts: int | None = None,
    min_efficiency: float = 0.0,
) -> list[list[int]]:
    """Group indices into batches whose padded size (rows x longest row) fits ``token_budget``
    and whose real tokens are at least ``min_efficiency`` of it.

    Longest first; ties keep input order (so plans are deterministic). A text longer than
    the budget on its own still gets a batch of one: the budget bounds packing, it never
    drops a text.
    """
    if token_budget < 1:
        raise ValueError(f"token_budget must be >= 1, got {token_budget}")
    eff = effective_lengths(lengths, max_tokens)
    order = sorted(range(len(eff)), key=lambda i: (-eff[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = real = 0  # sorted descending: the first row of a batch is its longest
    for i in order:
        full = current and (
            (len(current) + 1) * longest > token_budget
            or (max_batch_texts is not None and len(current) >= max_batch_texts)
            or (real + eff[i]) < min_efficiency * (len(current) + 1) * longest
        )
        if full:
            batches.append(current)
            current, real = [], 0
        if not current:
            longest = eff[i]
        current.append(i)
        real += eff[i]
    if current:
        batches.append(current)
    return batches


def plan_fixed_batches(lengths: Sequence[int], batch_size: int, *, sort: bool = True) -> list[list[int]]:
    """Fixed count per batch (the usual way): longest first, or in input order with ``sort=False``."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)) if sort else list(range(len(lengths)))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padding_tokens(lengths: Sequence[int], batches: list[list[int]], max_tokens: int | None = None) -> tuple[int, int]:
    """(real tokens, padded tokens) a plan computes; real / padded is its padding efficiency."""
    eff = effective_lengths(lengths, max_tokens)
    real = sum(eff[i] for b in batches for i in b)
    padded = sum(len(b) * max(eff[i] for i in b) for b in batches if b)
    return real, padded


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (and MPS) out-of-memory, whichever way torch raised it."""
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover - torch always present here
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_device_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


class TextTooLargeError(RuntimeError):
    """One text alone does not fit in device memory."""


@dataclass
class BatchRunStats:
    oom_splits: int = 0  # batches split after (or to avoid) an out-of-memory error


def iter_batches(
    plan: list[list[int]],
    encode_fn: Callable[[list[int]], np.ndarray],
    *,
    lengths: Sequence[int] | None = None,
    max_tokens: int | None = None,
    stats: BatchRunStats | None = None,
    where: str = "encoder",
):
    """Run ``encode_fn(indices) -> (len(indices), dim)`` for each planned batch; yields
    ``(indices, vectors)`` as each batch finishes.

    On out-of-memory the batch is halved and both halves retried; after the first failure
    every batch whose padded size reaches the smallest failing size is halved up front, so
    one OOM does not turn into one OOM per batch.
    """
    stats = stats if stats is not None else BatchRunStats()
    n = 1 + max((i for b in plan for i in b), default=0)
    eff = effective_lengths(lengths, max_tokens) if lengths is not None else [1] * n
    padded = lambda idx: len(idx) * max(eff[i] for i in idx)  # noqa: E731
    failed_at: int | None = None  # smallest padded size that ran out of memory
    todo = list(reversed(plan))  # a stack: halves go back on top, in order
    while todo:
        idx = todo.pop()
        if not idx:
            continue
        if failed_at is not None and len(idx) > 1 and padded(idx) >= failed_at:
            _push_halves(todo, idx)
            stats.oom_splits += 1
            continue
        oom = False
        try:
            vecs = encode_fn(idx)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            oom = True
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if oom:
            # Outside the except block: the exception (and the tensors its traceback pins) is gone.
            free_device_memory()
            if len(idx) == 1:
                raise TextTooLargeError(
                    f"{where}: out of device memory on a single text of {eff[idx[0]]} tokens ({message}). "
                    "Lower the model's max_length, use encode.long_docs=chunk, or a device with more memory."
                )
            size = padded(idx)
            failed_at = size if failed_at is None else min(failed_at, size)
            log.warning("%s: out of memory on a batch of %d texts (%d padded tokens); splitting", where, len(idx), size)
            _push_halves(todo, idx)
            stats.oom_splits += 1
            continue
        yield np.asarray(idx), np.asarray(vecs, dtype=np.float32)


def _push_halves(stack: list[list[int]], idx: list[int]) -> None:
    half = len(idx) // 2
    stack.append(idx[half:])
    stack.append(idx[:half])  # popped first: keeps longest-first order
