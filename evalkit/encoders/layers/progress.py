"""Counts texts done as vectors stream up the stack (cache hits included) and tells the hooks,
so a progress display needs no flags in any backend. Sits right above the cache, so it sees
what the cache answered at once and what the model computes batch by batch."""

from __future__ import annotations

import time

from evalkit.encoders.base import EncodeProgress, EncoderWrapper, Role, encode_iter


class ProgressEncoder(EncoderWrapper):
    def __init__(self, inner, callbacks, counters):
        super().__init__(inner)
        self.callbacks, self.counters = callbacks, counters

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        state = EncodeProgress(role=role.value, done=0, total=len(texts), cached=0, started=time.perf_counter())
        hits_before = self.counters.cache_hits
        self.callbacks.on_encode_progress(state)
        try:
            for idx, vecs in encode_iter(self.inner, texts, role=role, instruction=instruction):
                state.done += len(idx)
                state.cached = self.counters.cache_hits - hits_before
                self.callbacks.on_encode_progress(state)
                yield idx, vecs
        finally:
            state.finished = True
            self.callbacks.on_encode_progress(state)
