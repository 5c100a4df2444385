"""Noise-aware batch norm (study 004, Algorithm 1): per-chip batch-norm statistics recalibrated under the noise.

Each chip is a different noisy network, so each gets its own running mean and variance. Calibration runs
training batches through the noisy chips while the forward normalizes with the batch's own statistics (as batch
norm in training mode). The first batch initializes the statistics; later ones update them by

* ``momentum`` m (Algorithm 1, m = 0.999): mu_C <- m mu_C + (1 - m) mu. The study runs one pass over the
  training data (ImageNet: ~5,000 batches of 256, where 0.999 has forgotten the first batch); over a few dozen
  batches the estimate is mostly the first batch's (its weight is m^(n-1): 0.98 after 20 batches);
* ``momentum`` None: the cumulative average of the batch statistics (torch's ``momentum=None``), the value that
  EMA converges to over a long pass, reached after any number of batches.

With dynamic calibration (test time, "continuing the calibration process whenever the model has processed a
batch of test data") every test batch, after it has been normalized with the current statistics, updates them
with ``dynamic_momentum`` (Algorithm 1's m = 0.999).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class ChipBatchNorm(nn.Module):
    """Drop-in replacement of BatchNorm1d/2d inside a converted model, with statistics per chip."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, ctx, n_chips: int, momentum: Optional[float] = 0.999,
                 dynamic_momentum: float = 0.999):
        super().__init__()
        if bn.running_mean is None:
            raise ValueError("noise-aware batch norm needs batch-norm layers that track running statistics")
        self.ctx, self.eps, self.momentum, self.dynamic_momentum = ctx, bn.eps, momentum, dynamic_momentum
        c = bn.num_features
        self.register_buffer("weight", bn.weight.detach().clone() if bn.affine else torch.ones(c), persistent=False)
        self.register_buffer("bias", bn.bias.detach().clone() if bn.affine else torch.zeros(c), persistent=False)
        # Start from the digital model's statistics; calibration replaces them per chip.
        self.register_buffer("mean", bn.running_mean.detach().clone().expand(n_chips, c).contiguous(), persistent=False)
        self.register_buffer("var", bn.running_var.detach().clone().expand(n_chips, c).contiguous(), persistent=False)
        self.register_buffer("calibrated", torch.zeros(n_chips, dtype=torch.bool), persistent=False)
        self.register_buffer("batches", torch.zeros(n_chips), persistent=False)  # calibration batches seen
        self.mode = "fixed"  # fixed | calibrate | dynamic
        self._index: dict[int, int] = {}

    def set_chip_ids(self, chip_ids: tuple[int, ...]) -> None:
        """Map chip ids to rows of the statistics tensors."""
        self._index = {k: i for i, k in enumerate(chip_ids)}

    def reset(self) -> None:
        """Forget the calibration (e.g. after the chips were re-read at another time)."""
        self.calibrated.zero_()
        self.batches.zero_()

    @torch.no_grad()
    def load_statistics(self, other: "ChipBatchNorm") -> None:
        """Take over another copy's per-chip statistics (same chips, e.g. calibrated under other noise)."""
        idx = torch.tensor([other._index[k] for k in sorted(self._index, key=self._index.get)])
        for name in ("mean", "var", "calibrated", "batches"):
            getattr(self, name).copy_(getattr(other, name)[idx])

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
            self._update(rows, mu, var * n / max(n - 1, 1), self.momentum)  # running variance unbiased, as torch
            y = (xs - mu.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        else:
            y = (xs - self.mean[rows].view(shape)) * torch.rsqrt(self.var[rows].view(shape) + self.eps)
            if self.mode == "dynamic":
                var = xs.var(dim=(1, 3), unbiased=True)
                self._update(rows, xs.mean(dim=(1, 3)), var, self.dynamic_momentum)
        y = y * self.weight.view(1, 1, c, 1) + self.bias.view(1, 1, c, 1)
        return y.reshape(kc * b, *x.shape[1:])

    @torch.no_grad()
    def _update(self, rows: torch.Tensor, mu: torch.Tensor, var: torch.Tensor, m: Optional[float]) -> None:
        first = ~self.calibrated[rows]
        n = self.batches[rows].unsqueeze(1) + 1
        # m None: cumulative average, the n-th batch weighs 1/n (the first one 1, i.e. it initializes).
        keep = (n - 1) / n if m is None else torch.where(first.unsqueeze(1), 0.0, m)
        self.mean[rows] = keep * self.mean[rows] + (1 - keep) * mu
        self.var[rows] = keep * self.var[rows] + (1 - keep) * var
        self.calibrated[rows] = True
        self.batches[rows] += 1


def replace_batchnorms(net: nn.Module, ctx, chip_ids: tuple[int, ...], momentum: Optional[float] = 0.999
                       ) -> list[ChipBatchNorm]:
    """Swap every BatchNorm1d/2d of ``net`` for a ChipBatchNorm; returns them."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    out = []
    for name, bn in found:
        new = ChipBatchNorm(bn, ctx, len(chip_ids), momentum)
        new.set_chip_ids(chip_ids)
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, new)
        out.append(new)
    return out
