"""Small torch helpers shared by the local backends."""

from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_dtype(name: str) -> torch.dtype:
    return _DTYPES[name]


def synchronize(device) -> None:
    """Wait for queued GPU work so wall-clock timers measure the kernels, not the launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
