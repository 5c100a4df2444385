"""Task metrics for one or many simulated chips.

Shape rule (all functions): predictions may carry a leading chip dimension K. Then the result is a
float tensor [K] (one value per chip: the mean over that chip's examples); without it, a 0-dim
tensor. Targets never carry K: every chip sees the same test batch.

    accuracy(logits [K,B,C] | [B,C], y [B])                 -> fraction correct in [0, 1]
    psnr(pred [K,B,C,H,W] | [B,C,H,W], target [B,C,H,W])   -> mean over images of per-image PSNR, dB
    ssim(pred, target)                                      -> mean over images of per-image SSIM

PSNR and SSIM are computed per image (SSIM: Gaussian window 11, sigma 1.5, k1 = 0.01, k2 = 0.03, as
torchmetrics' defaults, against which the tests check) and then averaged over a chip's images.
Plain torch, no extra dependency.
[B,H,W] images (no channel dim) are accepted too. A perfect reconstruction has PSNR = inf.
"""
from __future__ import annotations

import torch

__all__ = ["accuracy", "psnr", "ssim"]

# Images per batch of work: bounds the memory of SSIM's five filtered maps for K x B images.
_CHUNK = 4096


def _split_chips(pred: torch.Tensor, target: torch.Tensor, what: str, target_ndim: tuple[int, ...]):
    """Return (pred as [K, ...target.shape], had_chip_dim) after checking the shapes agree."""
    if target.dim() not in target_ndim:
        raise ValueError(f"{what}: target must have {' or '.join(map(str, target_ndim))} dims, "
                         f"got shape {tuple(target.shape)}")
    if pred.dim() == target.dim() + 1:
        chips, had_k = pred, True
    elif pred.dim() == target.dim():
        chips, had_k = pred.unsqueeze(0), False
    else:
        raise ValueError(f"{what}: prediction shape {tuple(pred.shape)} does not fit target shape "
                         f"{tuple(target.shape)} (allowed: [K, *target] or target's shape)")
    return chips, had_k


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of examples whose arg-max class equals ``y``: [K] for [K,B,C] logits, else scalar."""
    y = torch.as_tensor(y)
    if y.dim() != 1:
        raise ValueError(f"accuracy: labels must be [B], got shape {tuple(y.shape)}")
    if logits.dim() not in (2, 3) or logits.shape[-2] != y.shape[0]:
        raise ValueError(f"accuracy: logits must be [B,C] or [K,B,C] with B = {y.shape[0]}, "
                         f"got shape {tuple(logits.shape)}")
    # float64: a fraction of examples is exact (float32 turns 0.9545 into 0.95450002...).
    correct = (logits.argmax(dim=-1) == y.to(logits.device)).double()
    return correct.mean(dim=-1)


def _per_image(fn, pred: torch.Tensor, target: torch.Tensor, what: str) -> torch.Tensor:
    """Apply ``fn(pred_chunk, target_chunk) -> [n]`` per image; mean per chip (shape rule above)."""
    chips, had_k = _split_chips(pred, target, what, (3, 4))
    if chips.shape[1:] != target.shape:
        raise ValueError(f"{what}: prediction images {tuple(chips.shape[1:])} differ from target "
                         f"{tuple(target.shape)}")
    if target.dim() == 3:                         # [B,H,W] -> [B,1,H,W]
        chips, target = chips.unsqueeze(2), target.unsqueeze(1)
    k, b = chips.shape[:2]
    flat_pred = chips.reshape(k * b, *chips.shape[2:]).float()
    flat_target = target.float().to(flat_pred.device).repeat(k, 1, 1, 1)
    values = torch.cat([fn(flat_pred[i:i + _CHUNK], flat_target[i:i + _CHUNK])
                        for i in range(0, k * b, _CHUNK)])
    per_chip = values.reshape(k, b).mean(dim=1)
    return per_chip if had_k else per_chip[0]


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE), per image then averaged."""

    def fn(p, t):
        mse = (p - t).pow(2).flatten(1).mean(dim=1)
        return 10.0 * torch.log10(data_range ** 2 / mse)

    return _per_image(fn, pred, target, "psnr")


def _gaussian_band(size: int, kernel_size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """[size, size - kernel_size + 1] matrix M such that z @ M is a 'valid' 1-D Gaussian filter.

    Separable filtering as two matrix products is ~10x faster on CPU than conv2d for the 5 maps of
    many small images, which matters at K chips x B images per sweep point.
    """
    g = torch.exp(-(torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2) ** 2
                  / (2 * sigma ** 2))
    g = (g / g.sum()).to(dtype=like.dtype, device=like.device)
    out = size - kernel_size + 1
    band = torch.zeros(size, out, dtype=like.dtype, device=like.device)
    for j in range(out):
        band[j:j + kernel_size, j] = g
    return band


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         kernel_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), per image then averaged.

    Gaussian-weighted local statistics (kernel_size window, std sigma) with C1 = (0.01 L)^2 and
    C2 = (0.03 L)^2, L = data_range. As in torchmetrics' structural_similarity_index_measure (whose
    defaults this reproduces; the tests compare), images are reflect-padded by kernel_size // 2, local
    variances are clamped at 0 and the SSIM map is averaged over the whole image and its channels.
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    pad = kernel_size // 2

    def fn(p, t):
        n, c, h, w = p.shape
        if h <= pad or w <= pad:
            raise ValueError(f"ssim: images {h}x{w} are too small for the {kernel_size}x{kernel_size} window")
        padded = torch.nn.functional.pad(torch.cat([p, t]), (pad, pad, pad, pad), mode="reflect")
        padded = padded.reshape(2, n * c, h + 2 * pad, w + 2 * pad)
        p, t = padded[0], padded[1]
        rows = _gaussian_band(h + 2 * pad, kernel_size, sigma, p)
        cols = _gaussian_band(w + 2 * pad, kernel_size, sigma, p)
        maps = torch.stack([p, t, p * p, t * t, p * t])          # [5, N*C, H+2pad, W+2pad]
        mu_p, mu_t, e_pp, e_tt, e_pt = rows.T @ maps @ cols      # local Gaussian means, [N*C, H, W]
        var_p = (e_pp - mu_p ** 2).clamp_min(0.0)
        var_t = (e_tt - mu_t ** 2).clamp_min(0.0)
        cov = e_pt - mu_p * mu_t
        num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
        den = (mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2)
        return (num / den).reshape(n, -1).mean(dim=1)

    return _per_image(fn, pred, target, "ssim")
