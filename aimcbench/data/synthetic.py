"""Deterministic synthetic datasets: offline stand-ins with the shapes of MNIST and CIFAR.

Each class has a fixed template (the same for every seed and split, so a model trained on one seed
generalises to another); each example is its class template, randomly shifted, scaled in contrast
and corrupted with Gaussian pixel noise, then clipped to [0, 1]. A small MLP learns the MNIST-shaped
set to well above chance but, because of the noise and shifts, not trivially to 100%.
"""
from __future__ import annotations

import numpy as np
import torch

# Templates never depend on the user's seed: train/test and every seed share one set of classes.
_TEMPLATE_SEED = 7_130_217
_SPLIT_IDS = {"train": 0, "test": 1}


def _stroke_templates(num_classes: int, size: int = 28) -> np.ndarray:
    """[C, size, size] float templates: each class is 3 soft line strokes inside the central area."""
    rng = np.random.default_rng([_TEMPLATE_SEED, num_classes, size])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    lo, hi = 0.25 * size, 0.75 * size
    templates = np.zeros((num_classes, size, size))
    for c in range(num_classes):
        img = np.zeros((size, size))
        for _ in range(3):
            (y0, x0), (y1, x1) = rng.uniform(lo, hi, size=(2, 2))
            # Distance of every pixel to the segment (y0,x0)-(y1,x1), then a soft 1.5-pixel pen.
            dy, dx = y1 - y0, x1 - x0
            t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0.0, 1.0)
            dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
            img = np.maximum(img, np.clip(2.0 - dist, 0.0, 1.0))
        templates[c] = img
    return templates


def _color_templates(num_classes: int, size: int = 32) -> np.ndarray:
    """[C, 3, size, size] smooth colour patterns: random 4x4 RGB grids upsampled bilinearly."""
    rng = np.random.default_rng([_TEMPLATE_SEED, num_classes, size, 3])
    coarse = torch.from_numpy(rng.uniform(0.1, 0.9, size=(num_classes, 3, 4, 4)))
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                           align_corners=True)
    return fine.numpy()


def _sample(templates: np.ndarray, n: int, rng: np.random.Generator, max_shift: int,
            noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` shifted, contrast-scaled, noisy copies of random templates (labels balanced)."""
    num_classes = templates.shape[0]
    labels = rng.permutation(np.arange(n) % num_classes)
    pad = [(0, 0)] * (templates.ndim - 2) + [(max_shift, max_shift)] * 2
    padded = np.pad(templates, pad)  # zero border so a shifted crop stays inside the array
    h, w = templates.shape[-2:]
    out = np.empty((n,) + templates.shape[1:], dtype=np.float32)
    shifts = rng.integers(0, 2 * max_shift + 1, size=(n, 2))
    for i in range(n):
        sy, sx = shifts[i]
        out[i] = padded[labels[i]][..., sy:sy + h, sx:sx + w]
    contrast = rng.uniform(0.6, 1.0, size=(n,) + (1,) * (templates.ndim - 1)).astype(np.float32)
    out *= contrast
    out += rng.normal(0.0, noise_std, size=out.shape).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out, labels.astype(np.int64)


def synthetic_mnist(n: int, split: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-shaped synthetic set: x float32 [n,1,28,28] in [0,1], y int64 [n] over 10 classes."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], 28])
    x, y = _sample(_stroke_templates(10), n, rng, max_shift=2, noise_std=0.3)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def synthetic_cifar(n: int, split: str, seed: int = 0,
                    num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-shaped synthetic set: x float32 [n,3,32,32] in [0,1], y int64 [n] over num_classes."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], 32, num_classes])
    x, y = _sample(_color_templates(num_classes), n, rng, max_shift=3, noise_std=0.15)
    return torch.from_numpy(x), torch.from_numpy(y)
