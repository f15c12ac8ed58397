"""What the figures were measured on: GPU, driver / CUDA, torch, CPU model, threads."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def nvidia_driver() -> str | None:
    try:  # no subprocess needed on Linux
        text = Path("/proc/driver/nvidia/version").read_text()
        for word in text.split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def device_info(device: str | None = None) -> dict:
    """Facts about the machine; GPU fields only when ``device`` is a CUDA device."""
    import torch

    info = {
        "device": device,
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "gpu": None,
        "cuda": None,
        "driver": None,
    }
    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(device)
        props = torch.cuda.get_device_properties(dev)
        info |= {
            "gpu": props.name,
            "gpu_memory_mb": round(props.total_memory / 2**20),
            "cuda": torch.version.cuda,
            "driver": nvidia_driver(),
        }
    return info
