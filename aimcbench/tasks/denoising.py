"""Denoising: PSNR/SSIM of every chip's and the digital model's reconstructions of noisy test images.

One fixed noise draw serves the whole run (seed ``mc.seed + 7919``): every chip and every point sees the same
noisy inputs, and an ``eval.noise_sigma`` sweep scales that same draw. With ``eval.images > 0`` each point also
keeps the first images as the median chip (by PSNR) reconstructs them: ``images/point_XXX.npz``.

With a digit recognizer (``eval.recognizer``, aimcbench/tasks/recognizer.py: by default the MNIST classifier for
MNIST) every point also has ``digit_accuracy``: the fraction of the test images whose reconstruction the fixed
recognizer labels correctly, per chip (and for the digital model). Its references go to the digital table of
every point (``digit_accuracy_noisy_input``: the recognizer on the noisy inputs at that point's sigma;
``digit_accuracy_clean_input``: on the clean inputs) and to meta.json (``recognizer``).
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

        from .recognizer import load_recognizer, recognized

        x, y = load_from_config(cfg["dataset"], "test", limit=cfg["eval"]["n"], seed=int(cfg["mc"]["seed"]))
        eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(cfg["mc"]["seed"]) + 7919))
        rec, info = load_recognizer(cfg["eval"].get("recognizer"), cfg["dataset"], cfg.get("cache_dir"), device, log,
                                    getattr(self, "load_or_train", None))  # set by the runner
        if rec is not None:
            rec_data = info.pop("_dataset_cfg")
            bs = int(cfg["eval"]["batch_size"])
            info["clean_accuracy"] = float(sum(
                float(recognized(rec, x[i:i + bs].to(device), y[i:i + bs], rec_data)) * len(x[i:i + bs])
                for i in range(0, x.shape[0], bs)) / max(x.shape[0], 1))
            meta["recognizer"] = info
            log(f"aimc: digit recognizer {info['model']} ({info['source']}): {info['clean_accuracy']:.2%} on the "
                "clean test inputs")
            rec = (rec, rec_data, y)
        return (x, eps, rec), {}

    @torch.no_grad()
    def evaluate(self, model, amodel, data, pcfg, ctx):
        from aimcbench.metrics import psnr, ssim

        from .recognizer import recognized

        x, eps, rec = data
        sigma = float(pcfg["eval"]["noise_sigma"])

        def step(start, stop):
            xb = x[start:stop].to(ctx.device)
            inp = (xb + sigma * eps[start:stop].to(ctx.device)).clamp(0.0, 1.0)
            out, dout = amodel(inp), model(inp)
            chips = {"psnr": psnr(out, xb), "ssim": ssim(out, xb)}
            digital = {"psnr": psnr(dout, xb), "ssim": ssim(dout, xb)}
            if rec is not None:
                net, rec_data, y = rec
                yb = y[start:stop]
                chips["digit_accuracy"] = recognized(net, out, yb, rec_data)
                digital.update(digit_accuracy=recognized(net, dout, yb, rec_data),
                               digit_accuracy_noisy_input=recognized(net, inp, yb, rec_data),
                               digit_accuracy_clean_input=recognized(net, xb, yb, rec_data))
            return chips, digital

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
