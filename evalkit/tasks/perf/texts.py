"""Real Chinese text (PRC statutes from the laws mirror) cut to exact lengths in a model's tokens.

Token counts are the model's own: for in-process backends ``encoder.token_lengths(
encoder.prepare([text], role=DOCUMENT))`` — the untruncated count of exactly what the
model would see, special tokens and prefixes included. A text of N tokens is the shortest
prefix of a window of the corpus that the tokenizer counts as N (found by interpolation
search on the character length; a window whose prefixes jump over N is moved one
character on).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from evalkit.data.laws import law_body, law_files
from evalkit.errors import DataError

Counter = Callable[[list[str]], list[int]]


def law_corpus(raw_dir: Path, min_chars: int) -> tuple[str, str]:
    """At least ``min_chars`` characters of statute text (files in sorted order) and its fingerprint."""
    parts, total, digest = [], 0, hashlib.sha256()
    for path in law_files(raw_dir):
        body = law_body(path.read_text(encoding="utf-8"))
        if not body:
            continue
        parts.append(body)
        total += len(body) + 1
        digest.update(path.relative_to(Path(raw_dir)).as_posix().encode() + b"\0" + body.encode())
        if total >= min_chars:
            break
    corpus = "\n".join(parts)
    if len(corpus) < min_chars:
        raise DataError(f"law texts under {raw_dir}/laws hold {len(corpus)} characters, {min_chars} needed")
    return corpus, "sha256:" + digest.hexdigest()[:16]


def exact_prefix(window: str, n_tokens: int, count: Counter, chars_per_token: float = 1.0) -> str | None:
    """Shortest prefix of ``window`` with exactly ``n_tokens`` tokens, or None if none has."""
    lo, c_lo = 0, count([""])[0]  # count(window[:lo]) < n  (empty text: special tokens only)
    if c_lo >= n_tokens:
        raise ValueError(f"{n_tokens} tokens requested but an empty input already has {c_lo}")
    hi = min(len(window), max(1, int((n_tokens - c_lo) * chars_per_token * 1.05) + 8))
    c_hi = count([window[:hi]])[0]
    while c_hi < n_tokens:  # grow the bracket
        if hi == len(window):
            raise DataError(f"text window of {len(window)} characters has only {c_hi} tokens, {n_tokens} needed")
        lo, c_lo = hi, c_hi
        hi = min(len(window), hi * 2)
        c_hi = count([window[:hi]])[0]
    # invariant: count(window[:lo]) < n <= count(window[:hi]); interpolation steps (fast when
    # tokens grow evenly with characters) alternate with bisection steps (bounded worst case)
    step = 0
    while hi - lo > 1:
        if step % 2 == 0:
            guess = lo + int((n_tokens - c_lo) * (hi - lo) / max(1, c_hi - c_lo))
            mid = min(hi - 1, max(lo + 1, guess))
        else:
            mid = (lo + hi) // 2
        step += 1
        c_mid = count([window[:mid]])[0]
        if c_mid < n_tokens:
            lo, c_lo = mid, c_mid
        else:
            hi, c_hi = mid, c_mid
    return window[:hi] if c_hi == n_tokens else None


def texts_of_length(
    corpus: str, n_tokens: int, how_many: int, count: Counter, chars_per_token: float = 1.0
) -> list[str]:
    """``how_many`` different texts of exactly ``n_tokens`` tokens, from spread-out corpus windows."""
    window_chars = int(n_tokens * chars_per_token * 3) + 64
    if len(corpus) < window_chars:
        raise DataError(f"corpus of {len(corpus)} characters too short for {n_tokens}-token texts")
    span = len(corpus) - window_chars
    out: list[str] = []
    for i in range(how_many):
        start = span * i // max(1, how_many)
        nl = corpus.find("\n", start, start + 200)  # start at a paragraph when one is near
        start = nl + 1 if nl != -1 and nl + 1 < span else start
        for shift in range(8):  # BPE may jump over n; move the window a character on
            text = exact_prefix(corpus[start + shift : start + shift + window_chars], n_tokens, count, chars_per_token)
            if text is not None:
                out.append(text)
                break
        else:
            raise DataError(f"could not cut a text of exactly {n_tokens} tokens near corpus offset {start}")
    return out


def estimate_chars_per_token(corpus: str, count: Counter, sample_chars: int = 4000) -> float:
    sample = corpus[:sample_chars]
    overhead = count([""])[0]
    return len(sample) / max(1, count([sample])[0] - overhead)
