"""Noise-aware batch norm (study 004, Algorithm 1): per-chip batch-norm statistics recalibrated under the noise.

Each chip is a different noisy network, so each gets its own running mean and variance. Calibration runs
training batches through the noisy chips: the first batch initializes the statistics, later ones update them as
mu_C <- m mu_C + (1 - m) mu with m = 0.999 (the study's value), while the forward normalizes with the batch's
own statistics (as batch norm in training mode). With dynamic calibration the statistics keep being updated
by every test batch after it has been normalized with the current ones.
"""

from __future__ import annotations

import torch
from torch import nn


class ChipBatchNorm(nn.Module):
    """Drop-in replacement of BatchNorm1d/2d inside a converted model, with statistics per chip."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, ctx, n_chips: int, momentum: float = 0.999):
        super().__init__()
        if bn.running_mean is None:
            raise ValueError("noise-aware batch norm needs batch-norm layers that track running statistics")
        self.ctx, self.eps, self.momentum = ctx, bn.eps, momentum
        c = bn.num_features
        self.register_buffer("weight", bn.weight.detach().clone() if bn.affine else torch.ones(c), persistent=False)
        self.register_buffer("bias", bn.bias.detach().clone() if bn.affine else torch.zeros(c), persistent=False)
        # Start from the digital model's statistics; calibration replaces them per chip.
        self.register_buffer("mean", bn.running_mean.detach().clone().expand(n_chips, c).contiguous(), persistent=False)
        self.register_buffer("var", bn.running_var.detach().clone().expand(n_chips, c).contiguous(), persistent=False)
        self.register_buffer("calibrated", torch.zeros(n_chips, dtype=torch.bool), persistent=False)
        self.mode = "fixed"  # fixed | calibrate | dynamic
        self._index: dict[int, int] = {}

    def set_chip_ids(self, chip_ids: tuple[int, ...]) -> None:
        """Map chip ids to rows of the statistics tensors."""
        self._index = {k: i for i, k in enumerate(chip_ids)}

    def reset(self) -> None:
        """Forget the calibration (e.g. after the chips were re-read at another time)."""
        self.calibrated.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chips, b = self.ctx.chips, self.ctx.batch
        kc, c = len(chips), x.shape[1]
        rows = torch.tensor([self._index[k] for k in chips], device=x.device)
        if x.shape[0] == b and kc > 1:  # before any analog layer: the same input for every chip
            x = x.unsqueeze(0).expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])
        xs = x.reshape(kc, b, c, -1)                                   # [Kc, B, C, spatial]
        shape = (kc, 1, c, 1)
        if self.mode == "calibrate":
            mu = xs.mean(dim=(1, 3))
            var = xs.var(dim=(1, 3), unbiased=False)
            n = xs.shape[1] * xs.shape[3]
            self._update(rows, mu, var * n / max(n - 1, 1))               # running variance is unbiased, as in torch
            y = (xs - mu.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        else:
            y = (xs - self.mean[rows].view(shape)) * torch.rsqrt(self.var[rows].view(shape) + self.eps)
            if self.mode == "dynamic":
                var = xs.var(dim=(1, 3), unbiased=True)
                self._update(rows, xs.mean(dim=(1, 3)), var)
        y = y * self.weight.view(1, 1, c, 1) + self.bias.view(1, 1, c, 1)
        return y.reshape(kc * b, *x.shape[1:])

    @torch.no_grad()
    def _update(self, rows: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> None:
        first = ~self.calibrated[rows]
        m = self.momentum
        f = first.unsqueeze(1)
        self.mean[rows] = torch.where(f, mu, m * self.mean[rows] + (1 - m) * mu)
        self.var[rows] = torch.where(f, var, m * self.var[rows] + (1 - m) * var)
        self.calibrated[rows] = True


def replace_batchnorms(net: nn.Module, ctx, chip_ids: tuple[int, ...]) -> list[ChipBatchNorm]:
    """Swap every BatchNorm1d/2d of ``net`` for a ChipBatchNorm; returns them."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    out = []
    for name, bn in found:
        new = ChipBatchNorm(bn, ctx, len(chip_ids))
        new.set_chip_ids(chip_ids)
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, new)
        out.append(new)
    return out
