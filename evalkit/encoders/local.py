"""Shared encode loop of the in-process backends (sentence-transformers, plain transformers).

A backend supplies three things:
  ``prepare(texts, role, instruction)`` — the exact strings the model sees,
  ``token_lengths(prepared)``           — their untruncated token counts,
  ``encode_batch(prepared, lengths, role)`` — one forward pass, reporting a BatchReport.
This class plans the batches (``plan_batches``), runs them and restores input order; it is
the one place where batch planning lives.
"""

from __future__ import annotations

import numpy as np

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role, check_embeddings


def plan_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of alike length: longest first, fixed count per batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class LocalEncoder:
    meta: EncoderMeta
    hooks: Hooks = NO_HOOKS
    batch_size: int = 32

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        raise NotImplementedError

    def token_lengths(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, batch: list[str], lengths: list[int], role: Role) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        prepared = self.prepare(texts, role=role, instruction=instruction)
        if not prepared:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        lengths = self.token_lengths(prepared)
        out: np.ndarray | None = None
        for idx in plan_batches(lengths, self.batch_size):
            vecs = self.encode_batch([prepared[i] for i in idx], [lengths[i] for i in idx], role)
            if out is None:
                out = np.empty((len(prepared), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return check_embeddings(out, len(texts), f"model {self.meta.name}")

    def close(self) -> None:
        pass
