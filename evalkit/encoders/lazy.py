"""The bottom of every encoder stack: the backend, built on first use.

A job whose every vector is in the cache never loads the model; until it loads, ``meta``
comes from the config and the tokenizer view from the backend's ``load_view`` (document
lengths need no model). A load that fails is one :class:`ModelLoadError` line. ``check``
runs on the loaded model before it is handed out (the known-answer probe,
``evalkit.encoders.probe``): a model that fails it is closed and never encodes for the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from evalkit.encoders.base import EncoderMeta, Hooks, encode_iter
from evalkit.errors import EvalkitError, ModelLoadError


class LazyBackend:
    """Builds the backend on first use; until then ``meta`` comes from the config."""

    def __init__(self, build: Callable[[], Any], cfg, hooks: Hooks,
                 on_load: Callable[[Any, float], None] | None = None, load_view: Callable[[Any], Any] | None = None,
                 check: Callable[[Any], None] | None = None):
        self._build, self.cfg, self.hooks, self._on_load, self._load_view = build, cfg, hooks, on_load, load_view
        self._check = check
        self.loaded = None
        self.load_seconds: float | None = None
        self._view = None

    def load(self):
        if self.loaded is None:
            t0 = time.perf_counter()
            try:
                self.loaded = self._build()
            except EvalkitError as exc:  # e.g. a dead server: its message already says what and where
                raise ModelLoadError(str(exc)) from exc
            except Exception as exc:  # one clear line for the user; the traceback goes to the failure records
                raise ModelLoadError(f"model {self.cfg.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
            self.load_seconds = time.perf_counter() - t0
            if self._on_load is not None:
                self._on_load(self.loaded, self.load_seconds)
            if self._check is not None:
                try:
                    self._check(self.loaded)
                except BaseException:
                    loaded, self.loaded = self.loaded, None
                    loaded.close()
                    raise
        return self.loaded

    @property
    def meta(self) -> EncoderMeta:
        if self.loaded is not None:
            return self.loaded.meta
        cfg = self.cfg
        return EncoderMeta(name=cfg.name, model_id=cfg.model_ref, revision=cfg.revision, backend=cfg.backend,
                           dim=getattr(cfg, "dimension", None), dtype=getattr(cfg, "dtype", None),
                           extra={"loaded": False})

    def tokenizer_view(self):
        """The loaded model's view; before it loads, the tokenizer alone where the backend can
        (a rerun whose vectors are all cached never loads the model for document lengths)."""
        if self.loaded is not None:
            return getattr(self.loaded, "tokenizer_view", lambda: None)()
        if self._load_view is not None and self._view is None:
            self._view = self._load_view(self.cfg)
        return self._view

    def encode(self, texts, *, role, instruction=None):
        return self.load().encode(texts, role=role, instruction=instruction)

    def encode_iter(self, texts, *, role, instruction=None):
        if not texts:
            return
        yield from encode_iter(self.load(), texts, role=role, instruction=instruction)

    def describe(self) -> dict:
        return self.loaded.describe() if self.loaded is not None else {}

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.close()
