"""Device choice, out-of-memory detection and batch sizing for the inference engine.

torch is imported inside the functions: importing this module stays cheap.
"""
from __future__ import annotations

import os

from lobule.inference.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")


def select_device(name: str = "auto") -> str:
    """The torch device to run on: ``"auto"`` picks cuda, then mps, then cpu.

    Raises
    ------
    InputError
        For an unknown name, or a device this machine does not have.
    """
    import torch

    if name not in DEVICES and not name.startswith("cuda:"):
        raise InputError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name} requested but no CUDA GPU is available (use --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device mps requested but Apple MPS is not available (use --device cpu)")
    return name


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU out-of-memory error (CUDA or MPS), whatever wrapper raised it."""
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "MPS backend out of memory" in text)


def free_memory_bytes(device: str) -> int | None:
    """Free memory of ``device`` in bytes: the GPU's free memory for cuda, available RAM for cpu
    (Linux ``/proc/meminfo``, else the physical pages free), None when unknown (mps)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if device == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def batch_size_for(bytes_per_tile: int, device: str, fraction: float = 0.5, cap: int = 64) -> int:
    """Largest batch whose estimated memory fits in ``fraction`` of the free memory, between 1
    and ``cap``; ``cap`` on devices whose free memory is unknown is replaced by 8."""
    free = free_memory_bytes(device)
    if free is None:
        return min(cap, 8)
    return int(max(1, min(cap, (free * fraction) // max(1, bytes_per_tile))))
