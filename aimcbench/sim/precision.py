"""Which precision a GPU's matrix products run at: ``precision=default|fp32|tf32`` of a sweep, ``--precision``
of scripts/bench_sim.py. TF32 keeps 10 mantissa bits of each product's inputs (fp32 keeps 23); torch's default on a
GPU is cuDNN convolutions in TF32 and other matrix products (the analog arrays' batched products) in fp32. A CPU
computes in fp32 whatever the setting. The analog products stay fp32 by default: a 12-bit ADC's codes are what
the precision test of scripts/gpu_check.py (step adc) measures in each mode."""

from __future__ import annotations

import torch

PRECISIONS = ("default", "fp32", "tf32")
# torch's own settings at import: what "default" restores.
TORCH_DEFAULT_TF32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)


def set_precision(precision: str) -> str:
    """Set torch's TF32 switches for ``precision`` (one of PRECISIONS); returns what they are now, in words."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: {precision!r}; allowed: {', '.join(PRECISIONS)}")
    matmul, conv = {"default": TORCH_DEFAULT_TF32, "fp32": (False, False), "tf32": (True, True)}[precision]
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv
    return f"matmul {'TF32' if matmul else 'FP32'}, cuDNN conv {'TF32' if conv else 'FP32'}"
