"""Long documents beyond a model's context, and identical texts encoded once.

``truncate`` (the default) is what every backend does by itself: tokens past the model's
limit are dropped, and each backend reports how many texts and tokens were cut
(``BatchReport.truncated_texts`` / ``tokens_cut``; summed per task by the wrappers).

``chunk`` splits a text longer than the window into windows of model tokens with an
overlap, encodes every window as an ordinary text and pools the window vectors (mean or
max, re-normalised when the model normalises). An 8k-context model then sees the whole of
a 30k-token law, as a 32k-context model would, so the two compare fairly on zh_longdoc.
Texts that fit are passed through untouched: their vectors are exactly the truncate ones.

``DedupEncoder`` encodes each distinct text of an encode call once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from evalkit.encoders.base import EncoderWrapper, Role
from evalkit.errors import ConfigError

Pooling = Literal["mean", "max"]
# Tokens kept free in each window: a window cut from a document may tokenise one or two
# tokens longer on its own than inside the document (BPE merges across the cut).
WINDOW_MARGIN = 4


@dataclass
class LongDocStats:
    texts_chunked: int = 0  # texts longer than the window
    chunks: int = 0  # windows encoded for them
    duplicates_skipped: int = 0  # texts not encoded because an identical one was

    def as_dict(self) -> dict[str, int]:
        return {"texts_chunked": self.texts_chunked, "chunks": self.chunks, "duplicates_skipped": self.duplicates_skipped}


def token_windows(n_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) token spans of ``window`` tokens, each overlapping the previous by ``overlap``;
    the last window ends at the last token."""
    if window <= overlap:
        raise ValueError(f"window ({window}) must be larger than overlap ({overlap})")
    if n_tokens <= window:
        return [(0, n_tokens)]
    step = window - overlap
    spans = []
    start = 0
    while True:
        end = min(start + window, n_tokens)
        spans.append((start, end))
        if end >= n_tokens:
            return spans
        start += step


def pool(vectors: np.ndarray, how: Pooling, normalize: bool) -> np.ndarray:
    out = vectors.max(axis=0) if how == "max" else vectors.mean(axis=0)
    if normalize:
        norm = float(np.linalg.norm(out))
        if norm > 0:
            out = out / norm
    return out.astype(np.float32)


class ChunkingEncoder(EncoderWrapper):
    """Encodes texts longer than the model's window as pooled overlapping windows."""

    def __init__(
        self,
        inner,
        backend,
        *,
        overlap: int = 64,
        pooling: Pooling = "mean",
        window_tokens: int | None = None,
        stats: LongDocStats | None = None,
    ):
        super().__init__(inner)
        self.backend = backend  # the model at the bottom of the wrapper stack: tokenizer, prepare
        self.tokenizer = getattr(backend, "tokenizer", None)
        if self.tokenizer is None or not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(
                f"run.long_docs=chunk needs the model's fast tokenizer to cut windows in model tokens; "
                f"backend {backend.meta.backend!r} of {backend.meta.name!r} has none. Use run.long_docs=truncate."
            )
        limit = window_tokens or backend.meta.max_tokens
        if not limit:
            raise ConfigError(f"run.long_docs=chunk: model {backend.meta.name!r} reports no max_tokens; set run.chunk_tokens")
        self.limit = int(limit)
        self.overlap = int(overlap)
        self.pooling = pooling
        self.stats = stats if stats is not None else LongDocStats()

    def window_for(self, role: Role, instruction: str | None) -> int:
        """Text tokens per window: the limit minus special tokens, prefix and instruction."""
        overhead = 2
        prepare = getattr(self.backend, "prepare", None)
        lengths = getattr(self.backend, "token_lengths", None)
        if prepare is not None and lengths is not None:
            overhead = lengths(prepare([""], role=role, instruction=instruction))[0]
        window = min(self.limit, self.backend.meta.max_tokens or self.limit) - overhead - WINDOW_MARGIN
        if window <= self.overlap:
            raise ConfigError(
                f"run.long_docs=chunk: a window of {window} text tokens (model limit {self.limit}, "
                f"{overhead} for specials/instruction) is not larger than run.chunk_overlap={self.overlap}"
            )
        return window

    def split(self, texts: Sequence[str], window: int) -> tuple[list[str], list[int]]:
        """(pieces, owner): every text that fits is one piece, itself; a longer one is cut."""
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        pieces: list[str] = []
        owner: list[int] = []
        for i, (text, offsets) in enumerate(zip(texts, enc["offset_mapping"])):
            spans = token_windows(len(offsets), window, self.overlap)
            if len(spans) == 1:
                pieces.append(text)
                owner.append(i)
                continue
            self.stats.texts_chunked += 1
            self.stats.chunks += len(spans)
            for start, end in spans:
                pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
                owner.append(i)
        return pieces, owner

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        if not texts:
            return self.inner.encode(texts, role=role, instruction=instruction)
        pieces, owner = self.split(texts, self.window_for(role, instruction))
        vecs = np.asarray(self.inner.encode(pieces, role=role, instruction=instruction), dtype=np.float32)
        if len(pieces) == len(texts):
            return vecs
        out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
        owner_arr = np.asarray(owner)
        bounds = np.flatnonzero(np.diff(owner_arr)) + 1  # pieces of one text are contiguous
        for group in np.split(np.arange(len(pieces)), bounds):
            i = owner[group[0]]
            out[i] = vecs[group[0]] if len(group) == 1 else pool(vecs[group], self.pooling, self.meta.normalize)
        return out



class DedupEncoder(EncoderWrapper):
    """Encodes each distinct text of a call once and copies its vector to the duplicates."""

    def __init__(self, inner, stats: LongDocStats | None = None):
        super().__init__(inner)
        self.stats = stats if stats is not None else LongDocStats()

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        first: dict[str, int] = {}
        inverse = [first.setdefault(t, len(first)) for t in texts]
        if len(first) == len(texts):
            return self.inner.encode(texts, role=role, instruction=instruction)
        self.stats.duplicates_skipped += len(texts) - len(first)
        vecs = np.asarray(self.inner.encode(list(first), role=role, instruction=instruction), dtype=np.float32)
        return vecs[np.asarray(inverse, dtype=np.int64)]

