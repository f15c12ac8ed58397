"""Which device each encode worker gets, checked before any process starts.

``encode.devices=[cuda:0,cuda:1]``: one worker per device. ``encode.workers=N`` alone: N
workers on the model's own device (``model.device``; ``auto`` is CUDA when there is one).
A device that does not exist here is a :class:`ConfigError` that names it and lists the
devices there are: the job stops at start, not after a model load in a child process.
"""

from __future__ import annotations

import os

from evalkit.errors import ConfigError


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _valid_devices(torch) -> str:
    names = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    return ", ".join(names)


def check_device(name: str, where: str = "encode.devices") -> str:
    """``name`` if this machine has that device, else a ConfigError naming it."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{where}: {name!r} is not a device name ({exc}); valid here: {_valid_devices(torch)}") from None
    if dev.type == "cuda":
        # Neither call creates a CUDA context: the parent stays off the GPUs its workers use.
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else f"torch {torch.__version__}"
            raise ConfigError(f"{where}: {name} does not exist: this machine has no usable CUDA device "
                              f"({build}); valid here: {_valid_devices(torch)}")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"{where}: {name} does not exist: this machine has {count} CUDA device(s); "
                              f"valid here: {_valid_devices(torch)}")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{where}: {name} does not exist here; valid here: {_valid_devices(torch)}")
    elif dev.type != "cpu":
        raise ConfigError(f"{where}: {name!r}: encode workers run on cpu, cuda:N or mps; valid here: {_valid_devices(torch)}")
    return name


def worker_devices(model_cfg, encode_cfg) -> list[str]:
    """One device name per worker process, each checked to exist on this machine."""
    devices = list(encode_cfg.devices or [])
    if devices:
        if encode_cfg.workers > 1 and encode_cfg.workers != len(devices):
            raise ConfigError(f"encode.workers={encode_cfg.workers} and encode.devices={devices} disagree: "
                              "there is one worker per device; drop encode.workers")
        return [check_device(str(d)) for d in devices]
    from evalkit.encoders.torch_utils import resolve_device

    device = check_device(resolve_device(getattr(model_cfg, "device", "cpu")), where="model.device")
    return [device] * encode_cfg.workers


def threads_per_worker(encode_cfg, n_workers: int) -> int:
    """``encode.threads``, else the cores shared out (at least one each)."""
    return encode_cfg.threads or max(1, usable_cores() // n_workers)
