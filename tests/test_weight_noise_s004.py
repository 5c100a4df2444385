"""Study 004's weight variation against its equations (1)-(2), statistically.

MUL: W_noisy = W + W N_T N_S, ADD: W_noisy = W + N_T N_S, N_S ~ N(1, s^2) per weight per chip (s = 0.1),
N_T ~ N(eta0, (r eta0)^2) per inference batch (r = 0.2). With N_T and N_S independent,

  E[N_T N_S] = eta0,  Var[N_T N_S] = E[N_T^2] E[N_S^2] - eta0^2 = eta0^2 ((1 + r^2)(1 + s^2) - 1)

(= 0.0504 eta0^2), so MUL's noise W N_T N_S has mean W eta0 and std |W| eta0 sqrt(0.0504), ADD's mean eta0 and std
eta0 sqrt(0.0504). Under temporal_granularity=batch (the study's reading: N_T is "randomly sampled for each
inference batch") every weight of a chip shares one N_T in a batch: (W_noisy - W) / (W N_S) is the same number for
all weights and layers, and over batches it is N(eta0, (r eta0)^2). Under weight each weight has its own N_T.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chi2
from torch import nn

from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.devices import ChipStreams, WeightNoiseDevice

ETA0, R, S = 0.05, 0.2, 0.1
VAR_PROD = ETA0**2 * ((1 + R**2) * (1 + S**2) - 1)  # Var[N_T N_S]
P = 1e-6  # two-sided miss probability of each statistical bound


def _std_interval(sample: torch.Tensor) -> tuple[float, float]:
    """The 1 - P confidence interval of a normal sample's std (chi-square)."""
    n = sample.numel()
    s2 = sample.double().var().item()
    return math.sqrt((n - 1) * s2 / chi2.ppf(1 - P / 2, n - 1)), math.sqrt((n - 1) * s2 / chi2.ppf(P / 2, n - 1))


def _device(kind: str, granularity: str) -> WeightNoiseDevice:
    return WeightNoiseDevice(load_hardware("weight_noise", [f"weight_noise.kind={kind}", f"weight_noise.eta0={ETA0}",
                                                            f"weight_noise.temporal_granularity={granularity}"]))


def _batches(kind: str, granularity: str, n_batches: int, shape=(30, 40), chips=2, layer="a"):
    """(W, N_S [Kc, out, in], noise = W_noisy - W per batch [n_batches, Kc, out, in])."""
    torch.manual_seed(0)
    w = torch.rand(shape) * 0.9 + 0.1                       # |W| > 0 so the MUL ratio is defined
    dev = _device(kind, granularity)
    streams = ChipStreams(7, layer, range(chips))
    state = dev.program(w, streams)
    noise = torch.stack([dev.sample(w, state, torch.ones_like(w), _batch_keys(streams, n)) - w
                         for n in range(n_batches)])
    return w, state.n_s, noise


def _batch_keys(streams: ChipStreams, n: int):
    """The keys of inference batch n, named as the crossbar names them (its n-th read of the stream)."""
    keys = streams(f"temporal #{n}")
    keys.reads = (n,) * len(streams)
    return keys


def test_default_granularity_is_the_studys_one_n_t_per_batch():
    assert load_hardware("weight_noise").weight_noise.temporal_granularity == "batch"


@pytest.mark.parametrize("kind", ["mul", "add"])
def test_batch_granularity_one_n_t_per_chip_and_batch_with_the_studys_spread(kind):
    b = 600
    w, n_s, noise = _batches(kind, "batch", b)
    n_t = noise / (w * n_s) if kind == "mul" else noise / n_s    # [B, Kc, out, in]
    per_batch = n_t.flatten(2)
    # One N_T within a batch: the ratio is the same for every weight (to float rounding).
    assert (per_batch.max(-1).values - per_batch.min(-1).values).abs().max().item() < 1e-4 * ETA0
    t = per_batch[:, :, 0]                                   # [B, Kc]
    assert not torch.allclose(t[:, 0], t[:, 1])              # chips draw their own N_T
    for k in range(t.shape[1]):
        se = R * ETA0 / math.sqrt(b)
        assert abs(t[:, k].mean().item() - ETA0) < 5 * se      # E[N_T] = eta0
        lo, hi = _std_interval(t[:, k])
        assert lo < R * ETA0 < hi                              # std N_T = 0.2 eta0
    # Pooled over batches and weights, the noise has the moments of eqs. 1-2 (per unit |W| for MUL).
    x = (noise / w if kind == "mul" else noise)[:, 0].flatten()
    # Var over batches of the within-batch mean ~ Var[N_T]: the effective sample size is the batch count.
    se = math.sqrt(VAR_PROD / (b * w.numel()) + (R * ETA0) ** 2 / b)
    assert abs(x.mean().item() - ETA0) < 5 * se
    assert x.std().item() == pytest.approx(math.sqrt(VAR_PROD), rel=5 / math.sqrt(2 * b))


def test_batch_granularity_shares_n_t_across_the_layers_of_a_chip():
    w, n_s_a, a = _batches("mul", "batch", 5, layer="conv1")
    _, n_s_b, b = _batches("mul", "batch", 5, layer="fc")
    ta, tb = (a / (w * n_s_a)).flatten(2)[..., 0], (b / (w * n_s_b)).flatten(2)[..., 0]
    torch.testing.assert_close(ta, tb)                       # the same N_T in the same batch
    assert not torch.equal(n_s_a, n_s_b)                     # while N_S differs per weight (and layer)


@pytest.mark.parametrize("kind", ["mul", "add"])
def test_weight_granularity_draws_n_t_per_weight(kind):
    w, n_s, noise = _batches(kind, "weight", 2, shape=(200, 200), chips=1)
    n_t = (noise / (w * n_s) if kind == "mul" else noise / n_s)[0, 0].flatten()
    lo, hi = _std_interval(n_t)                              # within ONE batch the ratios spread as N_T does
    assert lo < R * ETA0 < hi
    x = (noise / w if kind == "mul" else noise)[0, 0].flatten()
    lo, hi = _std_interval(x)
    assert lo < math.sqrt(VAR_PROD) < hi                     # and the noise as N_T N_S, eq. 1-2
    assert abs(x.mean().item() - ETA0) < 5 * math.sqrt(VAR_PROD / x.numel())


def test_network_wide_n_t_in_a_converted_model():
    """Two layers of one chip read in the same forward see one N_T; the next batch sees another."""
    net = nn.Sequential(nn.Linear(16, 16, bias=False), nn.Linear(16, 16, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(16))
        net[1].weight.copy_(torch.eye(16))
    x = torch.eye(16)
    ratios = []
    for gran in ("batch", "weight"):
        hw = load_hardware("weight_noise", ["weight_noise.kind=mul", "weight_noise.eta0=0.3",
                                            "weight_noise.spatial_std=0", f"weight_noise.temporal_granularity={gran}"])
        am = to_analog(net, hw, chips=2, seed=1)
        with torch.no_grad():
            y1, y2 = am(x), am(x)                           # N_S = 1: y = (1 + N_T1)(1 + N_T2) on the diagonal
        ratios.append((y1.diagonal(dim1=1, dim2=2), y2.diagonal(dim1=1, dim2=2)))
    (b1, b2), (w1, _) = ratios
    assert (b1.max(1).values - b1.min(1).values).max().item() < 1e-5   # batch: one factor for all weights
    assert (b1[:, 0] - b2[:, 0]).abs().min().item() > 1e-4             # redrawn in the next batch
    assert (w1.max(1).values - w1.min(1).values).min().item() > 1e-2   # weight: a factor per weight
