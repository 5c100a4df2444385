"""Statistical tests of the device and converter models against their formulas."""

import math

import pytest
import torch

from aimcbench.sim import load_hardware
from aimcbench.sim.converters import ADC, adc_levels, quantize_mulaw, quantize_uniform
from aimcbench.sim.devices import PCM_T0_S, PCM_T_READ_S, ChipStreams, WeightNoiseDevice, make_device

N = 200  # a 200x200 matrix: 40,000 devices per draw


def _streams(n_chips=1):
    return ChipStreams(0, "test", range(n_chips))


def _gens(n_chips=1, stream="program"):
    return _streams(n_chips)(stream)


def _std_bound(n, z=5.0):
    """Relative half-width of a z-sigma confidence interval of a sample std from n normal samples."""
    return z / math.sqrt(2 * n)


@pytest.mark.parametrize("w, scale", [(0.5, 1.0), (0.9, 1.0), (0.5, 2.0)])
def test_pcm_programming_noise_std_matches_formula(w, scale):
    hw = load_hardware("pcm", [f"device.prog_noise_scale={scale}"])
    dev = make_device(hw)
    w_norm = torch.full((N, N), w)
    prog = dev.program(w_norm, _streams())
    g_target = w * 25.0
    r = g_target / 25.0
    sigma = scale * (0.26348 + 1.9650 * r - 1.1731 * r * r)
    err = prog.g_plus[0] - g_target
    assert abs(err.mean().item()) < 5 * sigma / N
    assert err.std().item() == pytest.approx(sigma, rel=_std_bound(N * N))
    # The idle device of the pair targets 0 uS, gets the r = 0 noise and is clipped at 0 (a half-normal).
    idle = prog.g_minus[0]
    assert idle.min().item() == 0.0
    assert (idle > 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    half_normal_mean = scale * 0.26348 * math.sqrt(2 / math.pi) / 2
    assert idle.mean().item() == pytest.approx(half_normal_mean, rel=0.05)


@pytest.mark.parametrize("r", [0.5, 0.01, 1e-5])
def test_pcm_drift_exponent_mean_matches_formula(r):
    hw = load_hardware("pcm", ["device.prog_noise_scale=0"])
    dev = make_device(hw)
    prog = dev.program(torch.full((N, N), r), _streams())
    mu = min(max(-0.0155 * math.log(r) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(r) - 0.0059, 0.008), 0.045)
    # E|mu + sd N|: folded normal mean.
    expect = sd * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * sd * sd)) + mu * math.erf(mu / (sd * math.sqrt(2)))
    nu = prog.nu_plus[0]
    assert nu.mean().item() == pytest.approx(expect, abs=5 * sd / N)
    assert nu.std().item() == pytest.approx(sd, rel=0.05)
    # The drifted conductance follows g_prog (t / t0)^-nu exactly (no read noise).
    hw0 = load_hardware("pcm", ["device.prog_noise_scale=0", "device.read_noise_scale=0"])
    t = 1e4
    g, _ = make_device(hw0).read(prog, t, _streams())
    torch.testing.assert_close(g[0], prog.g_plus[0] * ((t + PCM_T0_S) / PCM_T0_S) ** (-nu))


def test_pcm_read_noise_grows_with_time_as_formula():
    hw = load_hardware("pcm", ["device.prog_noise_scale=0", "device.drift_scale=0"])
    dev = make_device(hw)
    r = 0.5
    prog = dev.program(torch.full((N, N), r), _streams())
    q_s = min(0.0088 / r**0.65, 0.2)
    for t_inf in (0.0, 1e2, 1e4):
        t = t_inf + PCM_T0_S
        expect = q_s * math.sqrt(math.log((t + PCM_T_READ_S) / (2 * PCM_T_READ_S)))
        g, _ = dev.read(prog, t_inf, _streams())
        rel = (g[0] - prog.g_plus[0]) / prog.g_plus[0]
        assert rel.std().item() == pytest.approx(expect, rel=_std_bound(N * N))


def test_uniform_adc_has_2_pow_bits_minus_1_levels():
    y = torch.linspace(-20, 20, 200001)
    for bits in (3, 4, 8):
        q = quantize_uniform(y, bits, 12.0, signed=True)
        assert q.unique().numel() == adc_levels(bits) == 2**bits - 1
        assert q.abs().max().item() == pytest.approx(12.0)
        assert q.unique().diff().allclose(torch.tensor(24.0 / (2**bits - 2)))
        qu = quantize_uniform(y, bits, 12.0, signed=False)
        assert qu.unique().numel() == 2**bits and qu.min().item() == 0.0


def test_mulaw_levels_are_fine_near_zero_and_coarse_near_bound():
    y = torch.linspace(-12, 12, 400001)
    q = quantize_mulaw(y, 4, 12.0).unique()
    assert q.numel() == 2**4 - 1
    steps = q.diff()
    assert steps[len(steps) // 2].item() < steps[0].item() / 10  # centre step << outer step
    # Companding then inverting with infinite resolution is the identity.
    z = torch.linspace(-1, 1, 101)
    mu = 255.0
    f = torch.sign(z) * torch.log1p(mu * z.abs()) / math.log1p(mu)
    torch.testing.assert_close(torch.sign(f) * torch.expm1(f.abs() * math.log1p(mu)) / mu, z)


def test_4bit_uniform_adc_maps_small_outputs_of_a_typical_layer_to_zero():
    """Study 000's zero-mapping: with a 4-bit uniform ADC (step 1.7 of a +-12 range) the small partial sums of a
    late layer all land on the zero code, while mu-law at 3-4 bits keeps them."""
    torch.manual_seed(0)
    w = torch.randn(32, 128) * 0.05
    x = torch.rand(256, 128) * (torch.rand(256, 128) < 0.2)  # sparse ReLU-like activations
    y_norm = (x / x.abs().amax(1, keepdim=True)) @ (w / w.abs().max()).T
    small = y_norm.abs() < 12.0 / 14  # below half a 4-bit step
    assert small.float().mean() > 0.7
    cfg = load_hardware("pcm", ["adc.bits=4"]).adc
    q4 = ADC(cfg, 12.0, True)(y_norm)
    assert bool((q4[small] == 0).all())
    assert (q4 == 0).float().mean().item() > 0.7
    cfg.bits = 12
    assert (ADC(cfg, 12.0, True)(y_norm) == 0).float().mean().item() < 0.05
    for bits in (3, 4):
        cfg.bits, cfg.quantizer = bits, "uniform"
        zeros_uniform = (ADC(cfg, 12.0, True)(y_norm) == 0).float().mean().item()
        cfg.quantizer = "mulaw"
        zeros_mulaw = (ADC(cfg, 12.0, True)(y_norm) == 0).float().mean().item()
        assert zeros_mulaw < zeros_uniform - 0.2


@pytest.mark.parametrize("variation", [0.0156, 0.0624, 0.1248])
def test_rram_variation_std_is_fraction_of_conductance_range(variation):
    hw = load_hardware("rram", [f"device.variation={variation}", "device.program_bits=null"])
    dev = make_device(hw)
    assert dev.g_min == pytest.approx(3.0) and dev.g_range == pytest.approx(27.0)
    prog = dev.program(torch.full((N, N), 0.6), _streams())
    target = 3.0 + 0.6 * 27.0
    err = prog.g_plus[0] - target
    assert err.std().item() / dev.g_range == pytest.approx(variation, rel=_std_bound(N * N))


def test_rram_targets_are_quantized_to_program_bits():
    hw = load_hardware("rram", ["device.program_bits=3"])
    dev = make_device(hw)
    gp, gm = dev.targets(torch.linspace(-1, 1, 1001))
    assert gp.unique().numel() == 8 and gm.unique().numel() == 8
    assert gp.min().item() == pytest.approx(3.0) and gp.max().item() == pytest.approx(30.0)


def test_weight_noise_statistics_match_definitions():
    w = torch.full((N, N), 0.5)
    hw = load_hardware("weight_noise", ["weight_noise.alpha=0.2"])
    static = WeightNoiseDevice(hw).program(w, _streams())
    rel = static[0] / w - 1
    assert rel.mean().item() == pytest.approx(0.0, abs=5 * 0.2 / N)
    assert rel.std().item() == pytest.approx(0.2, rel=_std_bound(N * N))
    # Study 004 MUL: W + W N_T N_S with N_S ~ N(1, 0.1^2) per chip, N_T ~ N(eta0, (0.2 eta0)^2) per batch.
    eta0 = 0.3
    hw = load_hardware("weight_noise", ["weight_noise.kind=mul", f"weight_noise.eta0={eta0}",
                                        "weight_noise.temporal_granularity=weight"])  # batch: test_weight_noise_s004
    dev = WeightNoiseDevice(hw)
    n_s = dev.program(w, _streams()).n_s
    assert n_s.mean().item() == pytest.approx(1.0, abs=5 * 0.1 / N)
    assert n_s.std().item() == pytest.approx(0.1, rel=_std_bound(N * N))
    gens = _gens(stream="temporal #0")   # a crossbar names the n-th batch's draws by n
    a = dev.sample(w, n_s, torch.ones_like(w), gens)
    b = dev.sample(w, n_s, torch.ones_like(w), _gens(stream="temporal #1"))
    assert not torch.equal(a, b)  # the temporal factor is redrawn every batch
    assert torch.equal(a, dev.sample(w, n_s, torch.ones_like(w), gens))  # and is a function of the batch's name
    prod = (a[0] - w) / w          # = N_T N_S: mean eta0, var = E[N_T^2]E[N_S^2] - eta0^2
    var = (eta0**2 * 1.04) * 1.01 - eta0**2
    assert prod.mean().item() == pytest.approx(eta0, abs=5 * math.sqrt(var) / N)
    assert prod.std().item() == pytest.approx(math.sqrt(var), rel=0.05)
    hw = load_hardware("weight_noise", ["weight_noise.kind=add", f"weight_noise.eta0={eta0}",
                                        "weight_noise.temporal_granularity=weight"])
    add = WeightNoiseDevice(hw).sample(w, n_s, torch.ones_like(w), gens)
    assert (add[0] - w).mean().item() == pytest.approx(eta0, abs=5 * math.sqrt(var) / N)
