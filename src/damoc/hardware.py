"""Device and dtype for the machine at hand: CUDA with bf16 where present, else CPU fp32."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def default_dtype(device: torch.device | None = None) -> torch.dtype:
    device = device or default_device()
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """'auto' (or None) picks for the hardware; otherwise one of float32, bfloat16, float16."""
    if name in (None, "auto"):
        return default_dtype(device)
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        from damoc.errors import DamocError

        raise DamocError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return table[name]
