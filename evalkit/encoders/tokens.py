"""Tokenise once: the ids a local backend computes for a text are both its length (for
batch planning and truncation counts) and the forward pass's input.

:class:`TokenizerView` wraps a Hugging Face fast tokenizer's Rust core (no truncation, no
padding, so no "sequence length is longer than the maximum" warning for long documents):
``encode`` returns each text's content ids once; ``with_specials`` adds the special tokens
the tokenizer's post-processor adds (probed once: ``[CLS] … [SEP]`` for BERT, ``… <eos>``
for Qwen3) and truncates the content the way the tokenizer's own ``truncation=True`` does,
so the ids equal what ``tokenizer(text, truncation=True, max_length=L)`` gives — each backend
checks that on probe texts at load time and falls back to its library's own path if not.

The view is also what wrappers see of the model (chunking cuts windows with ``offsets``),
so no wrapper reaches down to the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

KNOWN_LENGTHS_MAX = 2_000_000  # memo entries (~200 MB at most) before it starts over
PROBE_TEXTS = ["a b", "Hello, world! 你好，世界。", "x" * 3 + " — ok", "第一条 为了规范…" * 40]


def _find(haystack: list[int], needle: list[int]) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i
    return -1


@dataclass
class TokenizerView:
    tokenizer: object  # transformers PreTrainedTokenizerFast
    max_tokens: int | None  # the model's limit, special tokens included
    prepare: Callable[..., list[str]]  # the backend's: texts, role, instruction -> what the model sees
    extra_suffix: tuple[int, ...] = ()  # ids the backend appends itself (Qwen3 EOS, older revisions)

    def __post_init__(self):
        from tokenizers import Tokenizer

        core = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())  # a copy: its settings are ours
        core.no_truncation()
        core.no_padding()
        self.core = core
        self._known: dict[int, int] = {}  # hash(text) -> content length, of texts tokenised so far
        self.prefix, self.suffix = self._specials()
        self.suffix = self.suffix + list(self.extra_suffix)

    def _specials(self) -> tuple[list[int], list[int]]:
        """The ids the post-processor puts before and after a single text's content."""
        with_sp = self.core.encode("a b", add_special_tokens=True).ids
        content = self.core.encode("a b", add_special_tokens=False).ids
        pos = _find(with_sp, content)
        if pos < 0:
            raise ValueError("tokenizer's special tokens could not be located around the content")
        return with_sp[:pos], with_sp[pos + len(content):]

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids of each text, untruncated, no special tokens."""
        ids = [e.ids for e in self.core.encode_batch(list(texts), add_special_tokens=False)]
        if len(self._known) > KNOWN_LENGTHS_MAX:
            self._known.clear()
        self._known.update(zip(map(hash, texts), map(len, ids)))
        return ids

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Untruncated lengths, special tokens included (what the model would see uncut).

        Texts this view already tokenised for encoding are not tokenised again: a retrieval
        task's document lengths (by-length figures) then cost nothing after its encode. The
        memo keys on Python's 64-bit string hash; a collision would only misplace one
        document in a length statistic, never touch an embedding or a score."""
        out = [self._known.get(hash(t)) for t in texts]
        todo = [i for i, n in enumerate(out) if n is None]
        for i, ids in zip(todo, self.encode([texts[i] for i in todo]) if todo else []):
            out[i] = len(ids)
        return [n + self.n_special for n in out]

    def with_specials(self, content: list[int], limit: int | None = None) -> list[int]:
        limit = self.max_tokens if limit is None else limit
        keep = content if limit is None else content[: max(0, limit - self.n_special)]
        return self.prefix + keep + self.suffix

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of every content token (for cutting windows in model tokens)."""
        return [e.offsets for e in self.core.encode_batch(list(texts), add_special_tokens=False)]

    def overhead(self, role, instruction: str | None) -> int:
        """Tokens a text costs besides its own: special tokens, prefixes, instruction."""
        return self.lengths(self.prepare([""], role=role, instruction=instruction))[0]

    def check(self, reference: Callable[[list[str], int], list[list[int]]], limit: int) -> bool:
        """True when ``with_specials`` gives the library's own ids (``reference(texts, limit)``)."""
        ours = [self.with_specials(ids, limit) for ids in self.encode(PROBE_TEXTS)]
        return ours == [list(x) for x in reference(PROBE_TEXTS, limit)]
