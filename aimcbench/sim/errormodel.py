"""Study 003: a closed-form model of the output error of crossbar columns.

For one analog layer on the ``crossbar`` profile (signed weights on pairs g+ - g-, one signed ADC per column) and a
sample of that layer's inputs, the model predicts the mean squared error of every pre-activation output (before the
digital bias) against the exact product x W^T, term by term. Per array (row tile) t, input vector n and column j,
in normalized units (a current divided by the signal gain v_read * g_range, so that y = sum_i v_i w_ij):

    programming   2 sigma_p^2 / g_range^2 * sum_i v_i^2            (each cell N(0, sigma_p^2), sigma_p = prog_noise_uS)
    thermal       4 k T B * sum_i (g+_ij + g-_ij) / (v_read g_range)^2,   g+ + g- = 2 g_min + |w_ij| g_range
    shot          2 q B * v_read * sum_i |v_i| (g+_ij + g-_ij) / (v_read g_range)^2
    DAC           (step_dac^2 / 12) * sum_i w_ij^2 [0 < |v_i| < 1]   (zero and full-scale inputs are exact)
    ADC           step^2 / 12 while in range, step = 2 b / (2^bits - 2) (plus a series that corrects it when the
                  noise is smaller than a step; see rounding_correction)
    clipping      E[(clamp(Y, -b, b) - y)^2] - sigma^2 with Y ~ N(y, sigma^2), sigma^2 the sum of the noise terms

The noise terms are Gaussian given the input (sums of many independent cell errors), so the clipped error has the
closed form of a Gaussian truncated at +-b; the signal y itself is taken from the input sample (the "input
statistics" are the sample's, not a Gaussian fit, which keeps the clipping term right for skewed ReLU inputs).
Each term is then multiplied by (alpha_n * scale_j)^2 (the DAC's per-vector input scale and the weight scale) and
summed over row tiles (their noise is independent and added digitally; the clipping error is not zero-mean, so
the products of its per-tile means are added too: term ``cross``, with the mean rounding error when the noise is
smaller than an ADC step). The simulator's clamp of conductances at
0 is not modelled (negligible when g_min >= 3 prog_noise_uS; the crossbar profile has 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import HardwareConfig
from .colnoise import BOLTZMANN_J_PER_K, ELECTRON_CHARGE_C
from .crossbar import Crossbar
from .periphery import step_size
from .tiling import plan_layer

TERMS = ("prog", "thermal", "shot", "dac", "quant", "clip", "cross")


@dataclass
class TileStats:
    """Input/weight statistics of one row tile that the closed form needs ([N, out] unless noted)."""

    y: torch.Tensor          # exact normalized signal sum_i x_i/alpha w_ij
    weight2: torch.Tensor    # (alpha_n scale_j)^2: converts normalized squared errors to output units
    sum_v2: torch.Tensor     # [N, 1] sum_i v_i^2
    sum_absv: torch.Tensor   # [N, 1] sum_i |v_i|
    absv_absw: torch.Tensor  # sum_i |v_i| |w_ij|
    dac_w2: torch.Tensor     # sum_i w_ij^2 [0 < |v_i| < 1]
    rows: int                # cells per column (rows of this tile)
    sum_absw: torch.Tensor   # [1, out] sum_i |w_ij|


@dataclass
class LayerStats:
    """Everything the model needs about one layer and its input sample; hardware values come at predict time."""

    name: str
    tiles: list
    dac_bits: int | None


def layer_stats(name: str, weight: torch.Tensor, x: torch.Tensor, hw: HardwareConfig) -> LayerStats:
    """Statistics of layer ``name`` (weight [out, in]) for inputs x [N, in] on profile ``hw`` (float64)."""
    hw_l = hw.for_layer(name)
    w = weight.detach().reshape(weight.shape[0], -1).double()
    x = x.detach().reshape(x.shape[0], -1).double()
    plan = plan_layer(w.shape[1], w.shape[0], hw_l)
    cb = Crossbar(name, w.float(), hw_l, plan, seed=0)
    w_norm, scale = cb.w_norm.double(), cb.scale.double()
    tiles = []
    for t, (r0, r1) in enumerate(plan.row_splits):
        v, alpha = cb.dac(x[:, r0:r1].float())
        v, alpha = v.double(), alpha.double()
        wt = w_norm[:, r0:r1].t()                        # [rows, out]
        partial = ((v.abs() > 0) & (v.abs() < 1 - 1e-9)).double()
        tiles.append(TileStats(
            y=(x[:, r0:r1] / alpha) @ wt, weight2=(alpha * scale[t].unsqueeze(0)) ** 2,
            sum_v2=(v * v).sum(1, keepdim=True), sum_absv=v.abs().sum(1, keepdim=True), absv_absw=v.abs() @ wt.abs(),
            dac_w2=partial @ (wt * wt), rows=r1 - r0, sum_absw=wt.abs().sum(0, keepdim=True)))
    return LayerStats(name, tiles, hw_l.dac.bits)


def _phi(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2))


def clamped_mse(y: torch.Tensor, sigma: torch.Tensor, b: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """E[(clamp(Y, -b, b) - y)^2] for Y ~ N(y, sigma^2), P(|Y| < b) and the mean error E[clamp(Y) - y]."""
    sigma = sigma.clamp(min=1e-12)
    lo, hi = (-b - y) / sigma, (b - y) / sigma
    p_lo, p_hi = _cdf(lo), 1 - _cdf(hi)
    p_mid = (1 - p_lo - p_hi).clamp(min=0)
    # middle: E[(sigma Z)^2; lo < Z < hi] = sigma^2 (P + lo phi(lo) - hi phi(hi))
    mid = sigma**2 * (p_mid + lo * _phi(lo) - hi * _phi(hi))
    mean = sigma * (_phi(lo) - _phi(hi)) + (b - y) * p_hi - (b + y) * p_lo
    return mid + (b + y) ** 2 * p_lo + (b - y) ** 2 * p_hi, p_mid, mean


def noise_variances(st: TileStats, hw: HardwareConfig, g_min_uS: float, g_range_uS: float,
                    dac_bits: int | None) -> dict[str, torch.Tensor]:
    """The four Gaussian noise terms of one tile in normalized units (broadcastable to [N, out])."""
    c, v_read = hw.column_noise, hw.device.v_read_V
    g_min, g_r = g_min_uS * 1e-6, g_range_uS * 1e-6
    unit2 = (v_read * g_r) ** 2                      # A^2 per normalized unit^2
    zero = torch.zeros((), dtype=torch.float64)
    out = {"prog": 2 * (c.prog_noise_uS * 1e-6) ** 2 / g_r**2 * st.sum_v2}
    g_col = 2 * g_min * st.rows + g_r * st.sum_absw  # [1, out] siemens
    out["thermal"] = 4 * BOLTZMANN_J_PER_K * c.temperature_K * c.bandwidth_Hz * g_col / unit2 if c.thermal else zero
    i_col = v_read * (2 * g_min * st.sum_absv + g_r * st.absv_absw)  # [N, out] amperes
    out["shot"] = 2 * ELECTRON_CHARGE_C * c.bandwidth_Hz * i_col / unit2 if c.shot else zero
    out["dac"] = step_size(dac_bits, 1.0) ** 2 / 12 * st.dac_w2 if dac_bits else zero
    return out


def rounding_correction(y: torch.Tensor, sigma: torch.Tensor, step: float,
                        terms: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """E[(Q(Y) - y)^2] - sigma^2 - step^2/12 for Y ~ N(y, sigma^2) and rounding Q to multiples of ``step``, and the
    mean rounding error E[Q(Y) - Y] = step/pi sum_k (-1)^k / k sin(2 pi k y / step) exp(...) (a bias per input).

    Fourier series of the rounding error (Sripad & Snyder; Stein's lemma for its correlation with the noise):
    sum_k (-1)^k cos(2 pi k y / step) exp(-2 pi^2 k^2 sigma^2 / step^2) (step^2 / (pi k)^2 + 4 sigma^2).
    It vanishes once sigma exceeds about step / 2 (the noise dithers the ADC) and makes the model exact for
    coarse steps (a small output rounds to 0: error y^2, not step^2/12)."""
    out, mean = torch.zeros_like(y), torch.zeros_like(y)
    r2 = (sigma / step) ** 2
    for k in range(1, terms + 1):
        damp = torch.exp(-2 * math.pi**2 * k * k * r2)
        if float(damp.max()) < 1e-12:
            break
        out += (-1) ** k * torch.cos(2 * math.pi * k * y / step) * damp * (step**2 / (math.pi * k) ** 2 + 4 * sigma**2)
        mean += (-1) ** k / k * torch.sin(2 * math.pi * k * y / step) * damp
    return out, mean * (step / math.pi)


def predict(stats: LayerStats, hw: HardwareConfig, g_min_uS: float, g_max_uS: float, adc_bound: float,
            adc_bits: int | None, exact_quant: bool = True) -> dict[str, float]:
    """Predicted per-output MSE of the layer in output units^2, by term, plus ``total`` and ``gain_uA``
    (the signal gain: column current in uA per normalized unit) and ``fs_uA`` (the ADC full scale in uA).

    ``exact_quant`` False keeps the quantization term at step^2/12 (the convex surrogate the optimizer uses)."""
    g_r = g_max_uS - g_min_uS
    acc = {k: 0.0 for k in TERMS}
    bias_sum, bias_sq = 0.0, 0.0  # clipping is biased: its errors in the row tiles of an output add up coherently
    for st in stats.tiles:
        var = noise_variances(st, hw, g_min_uS, g_r, stats.dac_bits)
        sigma2 = sum(v for v in var.values()) + torch.zeros_like(st.y)
        for k, v in var.items():
            acc[k] += float(((v + torch.zeros_like(st.y)) * st.weight2).mean())
        clamped, p_mid, mean = clamped_mse(st.y, sigma2.sqrt(), adc_bound)
        acc["clip"] += float(((clamped - sigma2) * st.weight2).mean())

        if adc_bits is not None:
            step = step_size(adc_bits, adc_bound)
            q = step**2 / 12
            if exact_quant:
                corr, q_mean = rounding_correction(st.y, sigma2.sqrt(), step)
                q, mean = q + corr, mean + p_mid * q_mean
            acc["quant"] += float((q * p_mid * st.weight2).mean())
        bias = mean * st.weight2.sqrt()
        bias_sum, bias_sq = bias_sum + bias, bias_sq + bias * bias
    if len(stats.tiles) > 1:
        # cross-tile products of the biases (clipping, and rounding when the noise is below a step)
        acc["cross"] = float((bias_sum * bias_sum - bias_sq).mean())
    acc["total"] = sum(acc[k] for k in TERMS)
    acc["gain_uA"] = hw.device.v_read_V * g_r
    acc["fs_uA"] = adc_bound * acc["gain_uA"]
    return acc


def predict_layer(name: str, weight: torch.Tensor, x: torch.Tensor, hw: HardwareConfig) -> dict[str, float]:
    """The prediction for the layer's own settings on ``hw`` (its per_layer overrides applied)."""
    hw_l = hw.for_layer(name)
    return predict(layer_stats(name, weight, x, hw), hw, hw_l.g_min_uS, hw_l.device.g_max_uS, hw_l.adc.bound,
                   hw_l.adc.bits)


@torch.no_grad()
def simulate_layer(name: str, weight: torch.Tensor, x: torch.Tensor, hw: HardwareConfig, chips: int = 20,
                   seed: int = 0) -> float:
    """Monte Carlo: mean over chips, inputs and outputs of (analog x W^T - x W^T)^2 on the simulator."""
    hw_l = hw.for_layer(name)
    w = weight.detach().reshape(weight.shape[0], -1).float()
    x = x.detach().reshape(x.shape[0], -1).float()
    cb = Crossbar(name, w, hw_l, plan_layer(w.shape[1], w.shape[0], hw_l), seed)
    y = cb.forward_matrix(x, cb.state(range(chips)))
    return float((y.double() - (x.double() @ w.double().t())).pow(2).mean())


# ----- optimization ----------------------------------------------------------------------------------------------
def clip_excess(y: torch.Tensor, sigma: torch.Tensor, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E[(|Y| - b)_+^2] for Y ~ N(y, sigma^2) (the expected squared excess over the full scale) and its
    derivative in b, -2 E[(|Y| - b)_+]."""
    sigma = sigma.clamp(min=1e-12)
    val, der = torch.zeros_like(y), torch.zeros_like(y)
    for m in (y, -y):
        d = m - b
        z = d / sigma
        val += (d * d + sigma**2) * _cdf(z) + d * sigma * _phi(z)
        der -= 2 * (d * _cdf(z) + sigma * _phi(z))
    return val, der


@dataclass
class LayerChoice:
    """The optimizer's answer for one layer: its settings and the full model's prediction there."""

    g_min_uS: float
    g_max_uS: float
    adc_bound: float
    predicted: dict
    iterations: int


def optimize_layer(stats: LayerStats, hw: HardwareConfig, adc_bits: int | None, g_min_lo_uS: float,
                   g_max_hi_uS: float, g_range_min_uS: float = 1.0, fs_max_uA: float | None = None,
                   max_outer: int = 6) -> LayerChoice:
    """Choose [g_min, g_max] and the ADC full scale b (normalized) of one layer minimizing the predicted MSE.

    Why this is a convex program. With u = 1 / (g_max - g_min) (per uS) the error is a sum of
      * noise(u) = c2 u^2 + c1 u with c1, c2 >= 0 (programming and DAC ~ u^2; thermal and shot ~ g_min u^2 + u):
        convex on u > 0;
      * quant(b) = (2 b / (2^bits - 2))^2 / 12: convex;
      * clip(b) = E[(|Y| - b)_+^2]: the expectation of a convex function of b, so convex;
    and the constraints are linear: 1/(g_max_hi - g_min) <= u <= 1/g_range_min, b > 0, and an optional ADC current
    limit b v_read / u <= fs_max_uA, i.e. b v_read - fs_max_uA u <= 0. Every term is nondecreasing in g_min (more
    idle-cell conductance: more thermal and shot noise) and a larger g_min only shrinks the range, so g_min sits at
    its lower bound. The clipping term also depends on the noise sigma(u) = sqrt(noise(u)), which is concave in u;
    it is frozen at the current iterate and the convex program re-solved until u stops moving (``max_outer``;
    at the device bound this takes one re-solve). Each convex program is solved by SLSQP from scipy, which reaches
    the global optimum of a convex problem. The quantization surrogate is step^2/12 (exact once the noise
    dithers the ADC); ``predicted`` is the full model at the answer.
    """
    from scipy.optimize import minimize

    if hw.adc.full_scale == "calibrated_max":
        return naive_layer(stats, hw, adc_bits)
    g_min = float(g_min_lo_uS)
    v_read = hw.device.v_read_V
    u_lo, u_hi = 1.0 / (g_max_hi_uS - g_min), 1.0 / g_range_min_uS
    # Noise per tile as c2 u^2 + c1 u, from two evaluations (exactly quadratic through the origin in u).
    coef = []
    for st in stats.tiles:
        n1 = sum(noise_variances(st, hw, g_min, 1.0, stats.dac_bits).values()) + torch.zeros_like(st.y)
        n2 = sum(noise_variances(st, hw, g_min, 0.5, stats.dac_bits).values()) + torch.zeros_like(st.y)
        # n(u) at u=1 and u=2 (ranges 1 and 0.5 uS): c2 + c1 = n1, 4 c2 + 2 c1 = n2
        c2 = (n2 - 2 * n1) / 2
        c1 = n1 - c2
        coef.append((c2, c1))
    qf = 0.0 if adc_bits is None else step_size(adc_bits, 1.0) ** 2 / 12
    y_scale = max(float(st.y.abs().max()) for st in stats.tiles) + 1e-9
    u, b = u_lo, y_scale / 2
    it = 0
    for it in range(1, max_outer + 1):
        sig = [(c2 * u * u + c1 * u).clamp(min=0).sqrt() for c2, c1 in coef]

        def f(p):
            uu, bb = float(p[0]) * u_lo, float(p[1]) * y_scale
            val, g_u, g_b = 0.0, 0.0, 0.0
            for st, (c2, c1), s in zip(stats.tiles, coef, sig):
                w = st.weight2
                cv, cd = clip_excess(st.y, s, bb)
                val += float(((c2 * uu * uu + c1 * uu + qf * bb * bb + cv) * w).mean())
                g_u += float(((2 * c2 * uu + c1) * w).mean())
                g_b += float(((2 * qf * bb + cd) * w).mean())
            return val, [g_u * u_lo, g_b * y_scale]

        cons = []
        if fs_max_uA is not None:
            cons.append({"type": "ineq", "fun": lambda p: fs_max_uA * p[0] * u_lo - v_read * p[1] * y_scale,
                         "jac": lambda p: [fs_max_uA * u_lo, -v_read * y_scale]})
        start = [u / u_lo, b / y_scale]
        if fs_max_uA is not None and v_read * b > fs_max_uA * u:
            start[1] = 0.9 * fs_max_uA * u / v_read / y_scale
        res = minimize(f, start, jac=True, method="SLSQP", constraints=cons,
                       bounds=[(1.0, u_hi / u_lo), (1e-6, 64.0)], options={"ftol": 1e-12, "maxiter": 200})
        u_new, b_new = float(res.x[0]) * u_lo, float(res.x[1]) * y_scale
        moved = abs(u_new - u) / u + abs(b_new - b) / b
        u, b = u_new, b_new
        if moved < 1e-4 and it > 1:
            break
    g_max = g_min + 1.0 / u
    return LayerChoice(g_min, g_max, b, predict(stats, hw, g_min, g_max, b, adc_bits), it)


def naive_layer(stats: LayerStats, hw: HardwareConfig, adc_bits: int | None) -> LayerChoice:
    """Study 003's naive mapping as a designer sets it from data without the convex model (hardware
    ``adc.full_scale: calibrated_max``): [g_min, g_max] at the device's limits and the full scale at the largest
    ideal column output on the sample (the same value as ``AnalogModel.calibrate_adc`` on these inputs).
    ``aimc optimize`` with that mode writes these per-layer settings as a profile."""
    g_min, g_max = hw.g_min_uS, hw.device.g_max_uS
    b = max(float(st.y.abs().max()) for st in stats.tiles)
    return LayerChoice(g_min, g_max, b, predict(stats, hw, g_min, g_max, b, adc_bits), 0)


def layer_inputs(model: torch.nn.Module, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
    """The inputs of the named Linear/Conv2d layers for a batch x, flattened to [N, in] (convs: unfolded)."""
    import torch.nn.functional as F

    mods = dict(model.named_modules())
    acts: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_hook(lambda m, a, o, n=n: acts.__setitem__(n, a[0].detach())) for n in names]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for n in names:
        m, a = mods[n], acts[n]
        if isinstance(m, torch.nn.Conv2d):
            cols = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # [N, in, L]
            a = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        out[n] = a.reshape(-1, a.shape[-1])
    return out
