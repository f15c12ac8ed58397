"""Small torch helpers shared by the local backends: device and dtype resolution, sizes, sync."""

from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def auto_dtype(device: str) -> str:
    """``dtype: auto``: the checkpoint's dtype on CUDA (bfloat16; float16 where the GPU has no
    bf16), float32 on CPU (exact, and CPUs gain little from half precision)."""
    if torch.device(resolve_device(device)).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def resolve_dtype(name: str, device: str = "auto") -> torch.dtype:
    return _DTYPES[auto_dtype(device) if name == "auto" else name]


def resolve_model_config(cfg):
    """The config with ``dtype: auto`` replaced by what will run: results, cache keys and the
    config hash record the resolved dtype."""
    if getattr(cfg, "dtype", None) == "auto":
        return cfg.model_copy(update={"dtype": auto_dtype(cfg.device)})
    return cfg


def model_size(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, bytes of weights as loaded)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


def synchronize(device) -> None:
    """Wait for queued GPU work so wall-clock timers measure the kernels, not the launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
