"""Issue 15: ``precision=default|fp32|tf32`` sets torch's TF32 switches for a sweep (they act on CUDA only) and
restores torch's own afterwards; a bad value is a one-line usage error."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from aimcbench.sim.precision import TORCH_DEFAULT_TF32, set_precision


def _flags():
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def test_set_precision_switches_and_restores():
    try:
        assert "FP32" in set_precision("fp32") and _flags() == (False, False)
        assert set_precision("tf32") == "matmul TF32, cuDNN conv TF32" and _flags() == (True, True)
        set_precision("default")
        assert _flags() == TORCH_DEFAULT_TF32
        with pytest.raises(ValueError, match="allowed: default, fp32, tf32"):
            set_precision("bf16")
    finally:
        set_precision("default")


def test_bad_precision_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "aimcbench", "sweep", "precision=fp16", f"hydra.run.dir={tmp_path}/r"],
                       capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "precision" in lines[0] and "fp32" in lines[0], r.stderr
    assert not (tmp_path / "r").exists()
