"""Shared encode loop of the in-process backends (sentence-transformers, plain transformers).

A backend supplies:
  ``prepare(texts, role, instruction)`` — the exact strings the model sees,
  ``view``                              — its :class:`~evalkit.encoders.tokens.TokenizerView`,
  ``forward_ids(ids)``                  — one forward pass over token ids (special tokens
                                          added, truncated), returning float32 vectors,
  ``forward_texts(texts)``              — the library's own path, used only when the probe
                                          at load time showed that our ids differ from its.

This class tokenises each text once (on a background thread, one window of texts ahead of
the model), plans padding-aware token-budget batches (``evalkit.encoders.batching``), runs them
(splitting a batch that runs out of device memory) and streams ``(indices, vectors)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import numpy as np

from evalkit.encoders.batching import Batching, BatchRunStats, iter_batches, plan_token_batches
from evalkit.encoders.base import NO_HOOKS, Batches, BatchReport, EncoderMeta, Hooks, Role, check_embeddings, collect

WINDOW = 4096  # texts tokenised and planned together (sorting and packing happen within a window)


class LocalEncoder:
    meta: EncoderMeta
    hooks: Hooks = NO_HOOKS
    batch_size: int = 32
    batching: Batching = Batching()
    view = None  # TokenizerView, set by the backend
    fast_ids: bool = True  # False: the probe found our ids differ from the library's
    batch_stats: BatchRunStats | None = None

    def effective_token_budget(self) -> int:
        if self.batching.token_budget is not None:
            return self.batching.token_budget
        return self.batch_size * (self.meta.max_tokens or 512)

    def tokenizer_view(self):
        return self.view

    # -- backend contract ------------------------------------------------------------------
    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        raise NotImplementedError

    def forward_ids(self, ids: list[list[int]]) -> np.ndarray:
        raise NotImplementedError

    def forward_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def device(self):
        return "cpu"

    # -- the loop ----------------------------------------------------------------------------
    def timed_forward(self, forward: Callable[[], np.ndarray], lengths: list[int], role: Role) -> np.ndarray:
        """Run one forward pass between device synchronisations and report it to the hooks."""
        from evalkit.encoders.torch_utils import synchronize

        limit = self.meta.max_tokens or max(lengths)
        kept = [min(n, limit) for n in lengths]
        device = self.device()
        synchronize(device)
        t0 = time.perf_counter()
        vecs = forward()
        synchronize(device)
        self.hooks.on_batch_end(BatchReport(
            role=role, n_texts=len(lengths), seconds=time.perf_counter() - t0, real_tokens=sum(kept),
            padded_tokens=len(lengths) * max(kept), truncated_texts=sum(n > limit for n in lengths),
            tokens_cut=sum(max(0, n - limit) for n in lengths),
        ))
        return np.asarray(vecs, dtype=np.float32)

    def _windows(self, prepared: list[str]):
        """(start, content ids) per window; the next window is tokenised while this one runs."""
        starts = list(range(0, len(prepared), WINDOW))
        tokenize = lambda s: self.view.encode(prepared[s : s + WINDOW])  # noqa: E731
        if not self.batching.prefetch or len(starts) == 1:
            for s in starts:
                yield s, tokenize(s)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-tokenize") as pool:
            pending = pool.submit(tokenize, starts[0])
            for k, s in enumerate(starts):
                ids = pending.result()
                if k + 1 < len(starts):
                    pending = pool.submit(tokenize, starts[k + 1])
                yield s, ids

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None) -> Batches:
        prepared = self.prepare(texts, role=role, instruction=instruction)
        if self.batch_stats is None:  # the stack's EncodeCounters when the hooks count (CountingHooks)
            self.batch_stats = getattr(self.hooks, "counters", None) or BatchRunStats()
        limit = self.meta.max_tokens
        for start, content in self._windows(prepared):
            lengths = [len(c) + self.view.n_special for c in content]
            plan = plan_token_batches(lengths, self.effective_token_budget(), max_tokens=limit,
                                      max_batch_texts=self.batching.max_batch_texts,
                                      min_efficiency=self.batching.min_efficiency)

            def run(idx: list[int]) -> np.ndarray:
                lens = [lengths[i] for i in idx]
                if self.fast_ids:
                    ids = [self.view.with_specials(content[i]) for i in idx]
                    return self.timed_forward(lambda: self.forward_ids(ids), lens, role)
                batch = [prepared[start + i] for i in idx]
                return self.timed_forward(lambda: self.forward_texts(batch), lens, role)

            for idx, vecs in iter_batches(plan, run, lengths=lengths, max_tokens=limit, stats=self.batch_stats,
                                          where=f"model {self.meta.name}"):
                yield idx + start, check_embeddings(vecs, len(idx), f"model {self.meta.name}")

    def encode_batch(self, prepared: list[str], role: Role) -> np.ndarray:
        """One forward pass over already prepared texts as a single batch (the perf benchmark's unit)."""
        content = self.view.encode(prepared)
        lengths = [len(c) + self.view.n_special for c in content]
        if self.fast_ids:
            ids = [self.view.with_specials(c) for c in content]
            return self.timed_forward(lambda: self.forward_ids(ids), lengths, role)
        return self.timed_forward(lambda: self.forward_texts(prepared), lengths, role)

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        return collect(self.encode_iter(texts, role=role, instruction=instruction), len(texts), self.meta.dim)

    def describe(self) -> dict:
        return {}  # one process, the model's own device (meta.device)

    def close(self) -> None:
        pass


class TorchModelEncoder(LocalEncoder):
    """A torch model fed with its own tokenizer's ids (backends ``hf`` and ``jina``): their common
    start, device, per-batch library path and close. A subclass sets ``model``, ``tokenizer``,
    ``view`` and ``_library_ids(texts, limit)`` (how the library itself tokenises and truncates)."""

    def _start(self, cfg, hooks: Hooks, batching: Batching | None) -> str:
        """Settings, torch and the device; returns the dtype name (``auto`` resolved for the device)."""
        import torch

        from evalkit.encoders.torch_utils import auto_dtype, resolve_device

        self.torch = torch
        self.cfg, self.hooks, self.batching = cfg, hooks, batching or Batching()
        self.batch_size = cfg.batch_size
        self._device = torch.device(resolve_device(cfg.device))
        return auto_dtype(cfg.device) if cfg.dtype == "auto" else cfg.dtype

    def _check_ids(self) -> None:
        """Does evalkit's tokenisation give the library's ids (short and at the limit)? Else per batch."""
        self.fast_ids = (self.view.check(self._library_ids, 12)
                         and self.view.check(self._library_ids, self.cfg.max_length))

    def device(self):
        return self._device

    def forward_texts(self, texts: list[str]) -> np.ndarray:
        return self.forward_ids(self._library_ids(texts, self.cfg.max_length))

    def close(self) -> None:
        self.model = None
        if self._device.type == "cuda":
            self.torch.cuda.empty_cache()
