"""``task.perf``: the settings of the perf task kind (its own section of ``task:``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from evalkit.fields import Strict

DEFAULT_PERF_LENGTHS = [128, 512, 1024, 2048, 4096, 8192, 16384, 32768]


class PerfSettings(Strict):
    """``task.perf``: the latency/memory benchmark's settings (part of its tasks' fingerprint)."""

    lengths: list[int] = Field(default_factory=lambda: list(DEFAULT_PERF_LENGTHS))
    batch_size: int = Field(8, ge=1)  # the second batch size of the length sweep (the first is 1)
    max_length: int | None = Field(None, ge=8)  # stop the sweep here even if the model allows more
    warmup: int = Field(2, ge=0)  # untimed passes per point
    repeats: int = Field(5, ge=1)  # timed passes per point (fewer past point_budget_s)
    short_repeats: int = Field(20, ge=1)  # timed passes of the short sentence
    short_tokens: int = Field(32, ge=8)  # short-sentence length in the model's tokens
    point_budget_s: float = Field(20.0, gt=0)  # stop repeating a point after this; skip longer lengths after a slower pass
    endpoint_chars_per_token: float | None = Field(None, gt=0)  # endpoints: None calibrates from usage counts

    @field_validator("lengths")
    @classmethod
    def _sorted_positive(cls, v: list[int]) -> list[int]:
        if not v or any(n < 8 for n in v):
            raise ValueError("lengths must be a non-empty list of token counts >= 8")
        return sorted(set(v))
