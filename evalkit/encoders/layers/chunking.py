"""Long documents beyond a model's context (``encode.long_docs``).

``truncate`` (the default) is what every backend does by itself: tokens past the model's
limit are dropped, and each backend reports how many texts and tokens were cut
(``BatchReport.truncated_texts`` / ``tokens_cut``; summed per task by the stack's counters).

``chunk`` splits a text longer than the window into windows of model tokens with an
overlap, encodes every window as an ordinary text and pools the window vectors (mean or
max, re-normalised when the model normalises). An 8k-context model then sees the whole of
a 30k-token law, as a 32k-context model would, so the two compare fairly on zh_longdoc.
Texts that fit are passed through untouched: their vectors are exactly the truncate ones.

Windows are cut in the model's own tokens through the tokenizer view the stack below
offers (``inner.tokenizer_view()``); the chunker never reaches for the backend itself.
With ``chunk_pooling=maxp`` the builder also hands retrieval tasks a search strategy over the
windows themselves (``evalkit.encoders.layers.maxp``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from evalkit.encoders.base import EncoderWrapper, Role, collect, encode_iter
from evalkit.errors import ConfigError

Pooling = Literal["maxp", "mean", "max"]  # maxp: retrieval scores documents by their best window (layers.maxp)
# Tokens kept free in each window: a window cut from a document may tokenise one or two
# tokens longer on its own than inside the document (BPE merges across the cut).
WINDOW_MARGIN = 4


def token_windows(n_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) token spans of ``window`` tokens, each starting ``window - overlap`` after the
    previous one; the last ends at the last token and is a whole window too (it overlaps the one
    before by ``overlap`` or more). Equal windows matter for MaxP: a short tail window (a few dozen
    tokens left over) is mostly whatever it holds, and outscored every full window of every other
    document on zh_passkey (docs/long_context.md)."""
    if window <= overlap:
        raise ValueError(f"window ({window}) must be larger than overlap ({overlap})")
    if n_tokens <= window:
        return [(0, n_tokens)]
    starts = list(range(0, n_tokens - window, window - overlap)) + [n_tokens - window]
    return [(start, start + window) for start in starts]


def pool(vectors: np.ndarray, how: Pooling, normalize: bool) -> np.ndarray:
    """One vector for a text's windows; ``maxp`` pools as ``mean`` (MaxP needs the windows
    themselves, which only retrieval search keeps: evalkit.encoders.layers.maxp)."""
    out = vectors.max(axis=0) if how == "max" else vectors.mean(axis=0)
    if normalize:
        norm = float(np.linalg.norm(out))
        if norm > 0:
            out = out / norm
    return out.astype(np.float32)


class ChunkingEncoder(EncoderWrapper):
    """Encodes texts longer than the model's window as pooled overlapping windows."""

    def __init__(self, inner, counters, *, overlap: int = 64, pooling: Pooling = "maxp", window_tokens: int | None = None):
        super().__init__(inner)
        self.view = inner.tokenizer_view()
        if self.view is None:
            raise ConfigError(
                f"encode.long_docs=chunk needs the model's tokenizer to cut windows in model tokens; backend "
                f"{inner.meta.backend!r} of {inner.meta.name!r} has none here. Use encode.long_docs=truncate."
            )
        given = [x for x in (window_tokens, self.view.max_tokens) if x]
        limit = min(given) if given else None  # a window never exceeds the model's limit
        if not limit:
            raise ConfigError(f"encode.long_docs=chunk: model {inner.meta.name!r} reports no max_tokens; set encode.chunk_tokens")
        self.limit, self.overlap, self.pooling, self.counters = int(limit), int(overlap), pooling, counters

    def window_for(self, role: Role, instruction: str | None) -> int:
        """Text tokens per window: the limit minus special tokens, prefix and instruction."""
        overhead = self.view.overhead(role, instruction)
        window = self.limit - overhead - WINDOW_MARGIN
        if window <= self.overlap:
            raise ConfigError(
                f"encode.long_docs=chunk: a window of {window} text tokens (model limit {self.limit}, "
                f"{overhead} for specials/instruction) is not larger than encode.chunk_overlap={self.overlap}"
            )
        return window

    def split(self, texts: Sequence[str], window: int) -> tuple[list[str], list[int]]:
        """(pieces, owner): every text that fits is one piece, itself; a longer one is cut."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, (text, offsets) in enumerate(zip(texts, self.view.offsets(texts))):
            spans = token_windows(len(offsets), window, self.overlap)
            if len(spans) == 1:
                pieces.append(text)
                owner.append(i)
                continue
            self.counters.texts_chunked += 1
            self.counters.chunks += len(spans)
            for start, end in spans:
                pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
                owner.append(i)
        return pieces, owner

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        if not texts:
            return
        pieces, owner = self.split(texts, self.window_for(role, instruction))
        vecs = collect(encode_iter(self.inner, pieces, role=role, instruction=instruction), len(pieces), self.meta.dim)
        if len(pieces) == len(texts):
            yield np.arange(len(texts)), vecs
            return
        out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
        bounds = np.flatnonzero(np.diff(np.asarray(owner))) + 1  # pieces of one text are contiguous
        for group in np.split(np.arange(len(pieces)), bounds):
            i = owner[group[0]]
            out[i] = vecs[group[0]] if len(group) == 1 else pool(vecs[group], self.pooling, self.meta.normalize)
        yield np.arange(len(texts)), out
