"""Shared encode loop of the in-process backends (sentence-transformers, plain transformers).

A backend supplies three things:
  ``prepare(texts, role, instruction)`` — the exact strings the model sees,
  ``token_lengths(prepared)``           — their untruncated token counts,
  ``encode_batch(prepared, lengths, role)`` — one forward pass, reporting a BatchReport.
This class plans token-budget batches (``evalkit.batching``), runs them (splitting a batch
that runs out of device memory) and restores input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from evalkit.batching import BatchRunStats, plan_token_batches, run_batches
from evalkit.encoders.base import NO_HOOKS, BatchReport, EncoderMeta, Hooks, Role, check_embeddings
from evalkit.encoders.torch_utils import synchronize


class LocalEncoder:
    meta: EncoderMeta
    hooks: Hooks = NO_HOOKS
    batch_size: int = 32
    # Padded tokens (rows x longest row) per forward pass; None: batch_size x max_tokens, the
    # worst case of a fixed batch_size. Set from run.token_budget by evalkit.encoders.wrappers.
    token_budget: int | None = None
    max_batch_texts: int | None = None  # optional cap on rows per batch
    batch_stats: BatchRunStats | None = None

    def effective_token_budget(self) -> int:
        if self.token_budget is not None:
            return self.token_budget
        return self.batch_size * (self.meta.max_tokens or 512)

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        raise NotImplementedError

    def timed_forward(self, forward: Callable[[], np.ndarray], lengths: list[int], role: Role, device) -> np.ndarray:
        """Run one forward pass between device synchronisations and report it to the hooks."""
        limit = self.meta.max_tokens or max(lengths)
        kept = [min(n, limit) for n in lengths]
        synchronize(device)
        t0 = time.perf_counter()
        vecs = forward()
        synchronize(device)
        self.hooks.on_batch_end(
            BatchReport(
                role=role,
                n_texts=len(lengths),
                seconds=time.perf_counter() - t0,
                real_tokens=sum(kept),
                padded_tokens=len(lengths) * max(kept),
                truncated_texts=sum(n > limit for n in lengths),
                tokens_cut=sum(max(0, n - limit) for n in lengths),
            )
        )
        return np.asarray(vecs, dtype=np.float32)

    def token_lengths(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, batch: list[str], lengths: list[int], role: Role) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        prepared = self.prepare(texts, role=role, instruction=instruction)
        if not prepared:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        lengths = self.token_lengths(prepared)
        limit = self.meta.max_tokens
        plan = plan_token_batches(
            lengths, self.effective_token_budget(), max_tokens=limit, max_batch_texts=self.max_batch_texts
        )
        if self.batch_stats is None:
            self.batch_stats = BatchRunStats()
        out = run_batches(
            len(prepared),
            plan,
            lambda idx: self.encode_batch([prepared[i] for i in idx], [lengths[i] for i in idx], role),
            lengths=lengths,
            max_tokens=limit,
            stats=self.batch_stats,
            where=f"model {self.meta.name}",
        )
        return check_embeddings(out, len(texts), f"model {self.meta.name}")

    def close(self) -> None:
        pass
