"""Study 003: noise-aware ReLU fine-tuning.

On the crossbar a hidden layer's pre-activation is u = clip(z + n) + bias, with z = x W^T, n the analog error
(programming, thermal, shot, DAC and ADC rounding; Gaussian with variance sigma^2 from the closed-form model) and
the clip at the ADC's saturation. The noise-aware activation is the expectation of ReLU over that noise:

    f(u) = E[min(ReLU(u + sigma Z), s)] = g(u) - g(u - s),   g(m) = E[ReLU(m + sigma Z)] = m Phi(m/sigma) + sigma phi(m/sigma)

with s = c + bias the saturated pre-activation, c = b * max|W| * sum_t max|x_t| (each row tile t of the input
saturates at the ADC bound b in normalized units). Fine-tuning the digital model for a few epochs through f in place
of ReLU teaches it to keep its decisions away from what the noise and saturation destroy. The activation is used
in training only: the fine-tuned weights are evaluated on the simulated hardware with plain ReLU (the hardware
supplies the noise and the clip), and the state dict keeps the plain model's layout.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class NoiseAwareReLU(nn.Module):
    """E[min(ReLU(u + sigma Z), s)] per element; ``s`` [B, 1] is set by a hook on the preceding Linear."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)
        self.sat: torch.Tensor | None = None

    @staticmethod
    def _g(m: torch.Tensor, sigma: float) -> torch.Tensor:
        z = m / sigma
        return m * 0.5 * torch.erfc(-z / math.sqrt(2)) + sigma * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.sigma <= 0:
            out = torch.relu(u)
            return out if self.sat is None else torch.minimum(out, self.sat.clamp(min=0))
        out = self._g(u, self.sigma)
        if self.sat is not None:
            out = out - self._g(u - self.sat, self.sigma)
        return out


def layer_noise(model: nn.Module, x: torch.Tensor, spec: dict[str, Any]) -> dict[str, dict]:
    """Per analog layer: sigma (output units), ADC bound b, row splits, from the error model on profile
    ``spec['profile']`` at ``spec['adc_bits']``, with the optimized (``spec['optimized']``) or the naive settings."""
    from aimcbench.sim import load_hardware, select_layers
    from aimcbench.sim.errormodel import layer_inputs, layer_stats, optimize_layer, predict
    from aimcbench.sim.tiling import plan_layer

    hw = load_hardware(spec["profile"], [f"adc.bits={int(spec['adc_bits'])}"])
    layers = select_layers(model, hw)
    acts = layer_inputs(model, x, list(layers))
    out = {}
    for name, mod in layers.items():
        hw_l = hw.for_layer(name)
        st = layer_stats(name, mod.weight, acts[name], hw)
        if spec["optimized"]:
            ch = optimize_layer(st, hw, hw.adc.bits, hw_l.g_min_uS, hw_l.device.g_max_uS)
            pred, b = ch.predicted, ch.adc_bound
        else:
            b = hw_l.adc.bound
            pred = predict(st, hw, hw_l.g_min_uS, hw_l.device.g_max_uS, b, hw.adc.bits)
        var = sum(pred[k] for k in ("prog", "thermal", "shot", "dac", "quant"))
        plan = plan_layer(mod.weight.shape[1], mod.weight.shape[0], hw_l)
        out[name] = {"sigma": math.sqrt(max(var, 0.0)), "bound": b, "rows": plan.row_splits}
    return out


def noise_aware_copy(model: nn.Module, noise: dict[str, dict]) -> nn.Module:
    """A copy of an nn.Sequential-style model whose ReLUs after analog Linears are NoiseAwareReLU (shared weights
    are not shared: train the copy, then load its state dict back)."""
    net = copy.deepcopy(model)
    names = [n for n, _ in net.named_children()]
    children = dict(net.named_children())
    for i, n in enumerate(names[:-1]):
        lin, act = children[n], children[names[i + 1]]
        if n not in noise or not isinstance(lin, nn.Linear) or not isinstance(act, nn.ReLU):
            continue
        spec = noise[n]
        na = NoiseAwareReLU(spec["sigma"])

        def hook(mod, inp, out, na=na, spec=spec):
            x = inp[0].reshape(inp[0].shape[0], -1)
            alpha = torch.stack([x[:, r0:r1].abs().amax(1) for r0, r1 in spec["rows"]], 1).sum(1, keepdim=True)
            c = spec["bound"] * mod.weight.detach().abs().max() * alpha
            na.sat = c + (0 if mod.bias is None else mod.bias.detach())

        lin.register_forward_hook(hook)
        setattr(net, names[i + 1], na)
    return net


def finetune_narelu(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_cfg: dict, device: str = "cpu",
                    progress: bool | None = None, log=None) -> dict:
    """Fine-tune ``model`` (already holding the digital weights) in place with noise-aware ReLUs."""
    from .loop import train_model

    spec = train_cfg["narelu"]
    model.eval()
    g = torch.Generator().manual_seed(int(train_cfg["seed"]))
    idx = torch.randperm(x.shape[0], generator=g)[: int(spec["samples"])]
    noise = layer_noise(model, x[idx], spec)
    if log:
        log("aimc: noise-aware ReLU: " + ", ".join(f"{n} sigma {v['sigma']:.3g} bound {v['bound']:.3g}"
                                                    for n, v in noise.items()))
    net = noise_aware_copy(model, noise)
    cfg = {**train_cfg, "steps": None, "epochs": int(spec["epochs"]), "lr": float(spec["lr"]), "narelu": None,
           "noise_injection": None}
    stats = train_model(net, x, y, "classification", cfg, device=device, progress=progress)
    model.load_state_dict(net.state_dict())
    stats["narelu_sigma"] = {n: v["sigma"] for n, v in noise.items()}
    return stats
