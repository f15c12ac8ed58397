"""Identical texts of one encode call are encoded once (mteb's STS and bitext tasks repeat
sentences; a corpus may hold duplicate documents)."""

from __future__ import annotations

import numpy as np

from evalkit.encoders.base import EncoderWrapper, Role, encode_iter


class DedupEncoder(EncoderWrapper):
    def __init__(self, inner, counters):
        super().__init__(inner)
        self.counters = counters

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        first: dict[str, int] = {}
        inverse = np.asarray([first.setdefault(t, len(first)) for t in texts], dtype=np.int64)
        if len(first) == len(texts):
            yield from encode_iter(self.inner, texts, role=role, instruction=instruction)
            return
        self.counters.duplicates_skipped += len(texts) - len(first)
        # rows of the input that each unique text stands for
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        positions = np.split(order, bounds)
        for idx, vecs in encode_iter(self.inner, list(first), role=role, instruction=instruction):
            rows = [positions[u] for u in idx]
            yield np.concatenate(rows), np.repeat(vecs, [len(r) for r in rows], axis=0)
