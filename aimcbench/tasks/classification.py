"""Classification: accuracy of every chip and of the digital model on ``eval.n`` test images."""
from __future__ import annotations

import torch

from .base import PointResult, Task, batched_metrics, register_task


class Classification(Task):
    name = "classification"
    loglog = True

    def eval_data(self, model, cfg, device, meta, log):
        from aimcbench.data import load_from_config

        x, y = load_from_config(cfg["dataset"], "test", limit=cfg["eval"]["n"], seed=int(cfg["mc"]["seed"]))
        return (x, y), {}

    @torch.no_grad()
    def evaluate(self, model, amodel, data, pcfg, ctx):
        from aimcbench.metrics import accuracy

        x, y = data

        def step(start, stop):
            xb, yb = x[start:stop].to(ctx.device), y[start:stop].to(ctx.device)
            return {"accuracy": accuracy(amodel(xb), yb)}, {"accuracy": accuracy(model(xb), yb)}

        chips, digital = batched_metrics(x.shape[0], ctx.batch_size, step, ctx.progress, ctx.desc)
        return PointResult(chips, digital)


register_task(Classification())
