"""Digital (floating-point) training loops: cross-entropy for classifiers, MSE + TV for the denoiser.

Every draw is seeded from ``seed``: private torch.Generators for shuffling, augmentation and noise, and a forked,
seeded global RNG scope around the loop (aimcbench.train.seeding; the initial weights are drawn in such a scope
by the cache), so the same config trains bitwise-identical weights on CPU and nothing leaks to the caller's RNG.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .seeding import training_scope

logger = logging.getLogger(__name__)


def total_variation(img: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of a [B, C, H, W] batch: mean |vertical| + mean |horizontal| difference."""
    dv = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    dh = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    return dv + dh


def corrupt(x: torch.Tensor, sigma: torch.Tensor | float, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of std ``sigma`` (scalar or per-image [B]) and clamp to the valid range [0, 1]."""
    if isinstance(sigma, torch.Tensor) and sigma.dim() == 1:
        sigma = sigma.view(-1, *([1] * (x.dim() - 1)))
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return (x + sigma * noise).clamp(0.0, 1.0)


def augment_batch(xb: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation of an image batch [B, C, H, W]: "none", or "crop_flip" (the standard CIFAR recipe:
    zero-pad 4 pixels, take a random crop of the original size, flip horizontally with probability 1/2)."""
    if kind in (None, "none"):
        return xb
    if kind != "crop_flip":
        raise ValueError(f"dataset.train_augment: must be none or crop_flip (got {kind!r})")
    b, _, h, w = xb.shape
    padded = F.pad(xb, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=generator)
    dx = torch.randint(0, 9, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = (dy.view(b, 1) + torch.arange(h)).view(b, 1, h, 1).expand(b, xb.shape[1], h, w + 8)
    out = torch.gather(padded, 2, rows)
    cols = (dx.view(b, 1) + torch.arange(w)).view(b, 1, 1, w).expand(b, xb.shape[1], h, w)
    out = torch.gather(out, 3, cols)
    return torch.where(flip.view(b, 1, 1, 1), out.flip(3), out)


def noisy_parameters(model: torch.nn.Module, spec: dict[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Study 004 noise injection: every Linear/Conv2d weight W becomes W + W N_T N_S (mul) or W + N_T N_S (add).

    N_S ~ N(1, spatial_std^2) and N_T ~ N(eta0, (temporal_rel_std eta0)^2) are drawn per weight, fresh for each
    call (each mini-batch), as the simulator's weight_noise profile draws them per chip and inference batch.
    The noisy weights stay functions of W, so gradients reach the clean weights (straight reparametrization).
    """
    eta0 = float(spec["eta0"])
    s_std = float(spec.get("spatial_std", 0.1))
    t_rel = float(spec.get("temporal_rel_std", 0.2))
    out: dict[str, torch.Tensor] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            w = mod.weight
            n_s = 1.0 + s_std * torch.randn(w.shape, generator=gen).to(w.device)
            n_t = eta0 + t_rel * eta0 * torch.randn(w.shape, generator=gen).to(w.device)
            noise = n_t * n_s
            out[f"{name}.weight" if name else "weight"] = w + (w * noise if spec["kind"] == "mul" else noise)
    return out


def train_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, cfg: dict[str, Any],
                device: str = "cpu", progress: bool | None = None) -> dict[str, float]:
    """Train ``model`` in place on (x, y) with Adam; returns {"loss", "steps", "epochs"}.

    cfg keys: steps (mini-batch updates; if null, epochs full passes), epochs, batch_size, lr, seed,
    threads (torch threads while training; null: unchanged); for task "denoising" also alpha_tv and
    noise_sigma_max (each training image is corrupted with sigma ~ U(0, noise_sigma_max), clamped to [0, 1]).
    noise_injection (optional): {kind: mul|add, eta0, [spatial_std, temporal_rel_std]} trains every mini-batch
    through freshly drawn noisy weights (see :func:`noisy_parameters`).
    """
    if progress is None:
        progress = sys.stderr.isatty()
    threads = cfg.get("threads")
    if threads:
        # Small-batch backward passes lose badly to thread oversubscription (measured: DAE step 0.05 s
        # on 1 thread vs 2 s on 2 threads of a busy 2-core machine), so training pins its own count.
        saved = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            return train_model(model, x, y, task, {**cfg, "threads": None}, device, progress)
        finally:
            torch.set_num_threads(saved)
    # The global RNGs (dropout, anything a layer draws) are forked and seeded for the loop (train/seeding.py).
    with training_scope(int(cfg["seed"]), device):
        return _train(model, x, y, task, cfg, device, progress)


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, cfg: dict[str, Any],
           device: str, progress: bool) -> dict[str, float]:
    gen = torch.Generator().manual_seed(int(cfg["seed"]) + 1)  # data order, augmentation, denoising noise
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    n, bs = x.shape[0], int(cfg["batch_size"])
    per_epoch = -(-n // bs)
    # A budget in steps keeps training time the same whether the data set is full MNIST or the sample.
    steps = int(cfg["steps"]) if cfg.get("steps") else int(cfg["epochs"]) * per_epoch
    # Study 004's injection is a {kind, eta0} mapping; a number is study 002's variation injection (train/aware.py).
    inject = cfg.get("noise_injection") if isinstance(cfg.get("noise_injection"), dict) else None
    augment = cfg.get("augment") or "none"
    noise_gen = torch.Generator().manual_seed(int(cfg["seed"]) + 2)  # own stream: shuffles stay as without noise

    # On a GPU: bf16 autocast (no loss scaling needed) and channels_last for conv nets; the CPU path is unchanged.
    cuda = str(device).startswith("cuda")
    channels_last = cuda and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if channels_last:
        model.to(memory_format=torch.channels_last)

    def forward(inp: torch.Tensor) -> torch.Tensor:
        if channels_last and inp.dim() == 4:
            inp = inp.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            if not inject:
                return model(inp).float()
            return torch.func.functional_call(model, noisy_parameters(model, inject, noise_gen), (inp,)).float()

    recent: list[float] = []
    bar = tqdm(total=steps, desc="train", disable=not progress, leave=False, unit="step")
    done = 0
    while done < steps:
        order = torch.randperm(n, generator=gen)  # a fresh shuffle (and noise draw) every epoch
        for start in range(0, n, bs):
            if done >= steps:
                break
            idx = order[start:start + bs]
            xb = augment_batch(x[idx], augment, gen).to(device)
            if task == "denoising":
                sigma = torch.rand(len(idx), generator=gen) * float(cfg["noise_sigma_max"])
                out = forward(corrupt(xb, sigma.to(device), gen))
                loss = F.mse_loss(out, xb) + float(cfg["alpha_tv"]) * total_variation(out)
            else:
                loss = F.cross_entropy(forward(xb), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            recent = (recent + [float(loss.detach())])[-per_epoch:]
            done += 1
            bar.update(1)
    bar.close()
    model.eval()
    mean_loss = sum(recent) / max(len(recent), 1)  # over the last epoch's worth of steps
    logger.info(f"trained {done} steps ({done / per_epoch:.1f} epochs): loss {mean_loss:.4f}")
    return {"loss": mean_loss, "steps": done, "epochs": done / per_epoch}


@torch.no_grad()
def evaluate_digital(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, noise_sigma: float = 0.3,
                     seed: int = 0, batch_size: int = 1000, device: str = "cpu") -> dict[str, float]:
    """Test metrics of the float model: accuracy, or PSNR/SSIM of denoised vs clean at ``noise_sigma``."""
    from aimcbench.metrics import accuracy, psnr, ssim

    model.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device)
        if task == "denoising":
            out = model(corrupt(xb, noise_sigma, gen))
            vals = {"psnr": psnr(out, xb), "ssim": ssim(out, xb)}
        else:
            vals = {"accuracy": accuracy(model(xb), y[start:start + batch_size].to(device))}
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v) * xb.shape[0]
    return {k: v / x.shape[0] for k, v in sums.items()}
