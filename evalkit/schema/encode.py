"""How vectors are computed (``encode:`` in the Hydra config; conf/encode/default.yaml).

Only ``long_docs``, the chunk settings and ``vectors`` can change a score; every other field is
speed-only: changing it never makes a finished result look stale.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from evalkit.fields import Strict, scoring_dump, speed

SHARD = re.compile(r"^(\d+)/(\d+)$")
CHUNK_FIELDS = ("chunk_tokens", "chunk_overlap", "chunk_pooling")
# How windows are cut (evalkit.encoders.layers.chunking.token_windows), part of a chunked result's identity:
# 2 = the last window is a whole window (issue 21; before, whatever was left over).
CHUNK_WINDOWS = 2


class EncodeConfig(Strict):
    # Embedding cache shared by tasks, runs and sweep jobs: off | read | readwrite.
    cache: Literal["off", "read", "readwrite"] = speed("readwrite")
    cache_path: str | None = speed(None)  # sqlite file; None: <paths.cache_dir>/embeddings.sqlite
    cache_commit_s: float = speed(5.0, gt=0)  # commit encoded vectors at least this often
    # Padded tokens (rows x longest row) per forward pass; None: model.batch_size x max length.
    token_budget: int | None = speed(None, ge=1)
    max_batch_texts: int | None = speed(None, ge=1)  # cap on rows per forward pass
    # Cut a batch early when padding would exceed 1 - min_padding_efficiency of its compute.
    min_padding_efficiency: float = speed(0.9, ge=0, le=1)
    dedup: bool = speed(True)  # encode identical texts of one encode call once
    prefetch: bool = speed(True)  # tokenise the next batch on a thread while the model runs
    # Texts longer than the model's context: truncate (counted) | chunk (overlapping windows
    # in model tokens, window vectors pooled).
    long_docs: Literal["truncate", "chunk"] = "truncate"
    # Window incl. special tokens, capped at the model's max (None: the model's max). 128 with
    # overlap 64 and MaxP, from measurements (docs/long_context.md): a small model's vector of a
    # whole 256-token window loses a one-sentence detail among the windows of other documents.
    chunk_tokens: int | None = Field(128, ge=8)
    chunk_overlap: int = Field(64, ge=0)
    # maxp: a retrieval document scores as its best window (Dai & Callan's MaxP); elsewhere, and for
    # queries, window vectors are averaged. mean / max: one pooled vector per text everywhere.
    chunk_pooling: Literal["maxp", "mean", "max"] = "maxp"
    # What an index would store (evalkit.encoders.layers.compress): float32 as the model returns
    # it, float16, int8/uint8 (ranges calibrated on the evaluated corpus) or binary/ubinary (one
    # bit per dimension, Hamming-equivalent scoring). Changes scores: each is its own variant.
    vectors: Literal["float32", "float16", "int8", "uint8", "binary", "ubinary"] = "float32"
    # Data parallel: one encoder process per device (cuda:0, cuda:1 …), or `workers` CPU
    # processes of `threads` threads each; None/1: encode in this process.
    devices: list[str] | None = speed(None)
    workers: int = speed(1, ge=1)
    threads: int | None = speed(None, ge=1)  # torch threads per CPU worker; None: cores / workers
    # Encode-only shard "i/N" of every task's texts into <cache_dir>/shards/ (a SLURM array
    # job); a later run without shard merges the shards and scores. None: encode and score.
    shard: str | None = speed(None)

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = SHARD.match(str(v).strip())
        if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
            raise ValueError(f"shard must be 'i/N' with 0 <= i < N, e.g. 0/4; got {v!r}")
        return f"{int(m.group(1))}/{int(m.group(2))}"

    def scoring(self) -> dict:
        """The settings that can change a vector, for the config hash: defaults left out, except
        that chunk settings count only when chunking, and then always, with the window rule, so
        a chunked result from before a changed default or rule never passes for a new one."""
        out = {k: v for k, v in scoring_dump(self, drop_defaults=True).items() if k not in CHUNK_FIELDS}
        if self.long_docs == "chunk":
            out |= {k: getattr(self, k) for k in CHUNK_FIELDS} | {"chunk_windows": CHUNK_WINDOWS}
        return out

    def shard_index(self) -> tuple[int, int] | None:
        if self.shard is None:
            return None
        i, n = self.shard.split("/")
        return int(i), int(n)
