"""Denoising: PSNR/SSIM of every chip's and the digital model's reconstructions of noisy test images.

One fixed noise draw serves the whole run (seed ``mc.seed + 7919``): every chip and every point sees the same
noisy inputs, and an ``eval.noise_sigma`` sweep scales that same draw. With ``eval.images > 0`` each point also
keeps the first images as the median chip (by PSNR) reconstructs them: ``images/point_XXX.npz``.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import PointResult, Task, batched_metrics, npz_bytes, register_task


@torch.no_grad()
def median_chip_images(model: torch.nn.Module, amodel: torch.nn.Module, x: torch.Tensor, eps: torch.Tensor,
                       noise_sigma: float, chip: int, device: str) -> dict[str, np.ndarray]:
    """clean/noisy/digital/analog [N, H, W] float32 for the first N test images (analog: one chip)."""
    clean = x.to(device)
    noisy = (clean + noise_sigma * eps.to(device)).clamp(0.0, 1.0)
    analog = amodel(noisy)[chip]
    to_np = lambda t: t.detach().float().cpu().reshape(t.shape[0], *t.shape[-2:]).numpy()
    return {"clean": to_np(clean), "noisy": to_np(noisy), "digital": to_np(model(noisy)), "analog": to_np(analog)}


class Denoising(Task):
    name = "denoising"

    def eval_data(self, model, cfg, device, meta, log):
        from aimcbench.data import load_from_config

        x, _ = load_from_config(cfg["dataset"], "test", limit=cfg["eval"]["n"], seed=int(cfg["mc"]["seed"]))
        eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(cfg["mc"]["seed"]) + 7919))
        return (x, eps), {}

    @torch.no_grad()
    def evaluate(self, model, amodel, data, pcfg, ctx):
        from aimcbench.metrics import psnr, ssim

        x, eps = data
        sigma = float(pcfg["eval"]["noise_sigma"])

        def step(start, stop):
            xb = x[start:stop].to(ctx.device)
            inp = (xb + sigma * eps[start:stop].to(ctx.device)).clamp(0.0, 1.0)
            out, dout = amodel(inp), model(inp)
            return {"psnr": psnr(out, xb), "ssim": ssim(out, xb)}, {"psnr": psnr(dout, xb), "ssim": ssim(dout, xb)}

        chips, digital = batched_metrics(x.shape[0], ctx.batch_size, step, ctx.progress, ctx.desc)
        files = {}
        if ctx.images > 0:
            order = np.argsort(chips["psnr"], kind="stable")
            chip = int(order[(len(order) - 1) // 2])  # the median chip by PSNR (lower middle for even counts)
            n_img = min(ctx.images, x.shape[0])
            imgs = median_chip_images(model, amodel, x[:n_img], eps[:n_img], sigma, chip, ctx.device)
            files[f"images/point_{ctx.point:03d}.npz"] = npz_bytes(**imgs, axis_label=np.array(ctx.axis_label),
                                                                   chip=np.array(chip))
        return PointResult(chips, digital, files)


register_task(Denoising())
