"""Whole-model simulator tests: ideal = digital, batched chips = single chips, determinism, tiling, accuracy."""

import pytest
import torch
from torch import nn

from aimcbench.sim import ConfigError, hardware_from_dict, load_hardware, tile_plan, to_analog
from aimcbench.sim.config import field_docs


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 7 * 7, 32), nn.ReLU(),
        nn.Linear(32, 10)).eval()


def _x(n=6):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _run(model, hw, x, **kw):
    with torch.no_grad():
        return to_analog(model, hw, **kw)(x)


def test_ideal_profile_equals_digital():
    model, x = _cnn(), _x()
    # A tiled ideal crossbar too: partial sums of several arrays add up to the digital product.
    for ov in ([], ["mapping.tile_rows=64", "mapping.tile_cols=16", "mapping.weight_scaling=per_tile"]):
        y = _run(model, load_hardware("ideal", ov), x, chips=3)
        assert y.shape == (3, 6, 10)
        torch.testing.assert_close(y, model(x).expand(3, -1, -1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("profile", ["pcm", "rram", "weight_noise"])
def test_batched_chips_equal_single_chip_runs(profile):
    model, x = _cnn(), _x()
    hw = load_hardware(profile, ["device.variation=0.05"] if profile == "rram" else [])
    all_chips = _run(model, hw, x, chips=4, seed=7)
    for k in range(4):
        alone = _run(model, hw, x, chips=[k], seed=7)[0]
        # Same draws; only float summation order differs (which can move a value across an ADC step).
        assert (all_chips[k] - alone).abs().max() < 1e-2 * all_chips[k].abs().max()
    chunked = _run(model, hw, x, chips=4, seed=7, chip_chunk=3)
    assert (chunked - all_chips).abs().max() < 1e-2 * all_chips.abs().max()


def test_chips_differ_and_reruns_reproduce():
    model, x = _cnn(), _x()
    hw = load_hardware("pcm")
    a = _run(model, hw, x, chips=3, seed=0)
    b = _run(model, hw, x, chips=3, seed=0)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a[0], a[1])
    assert not torch.allclose(a, _run(model, hw, x, chips=3, seed=1))


def test_chip_k_identical_across_adc_settings_and_times_before_the_adc():
    model = _cnn()
    states = []
    for ov in (["adc.bits=12"], ["adc.bits=4"], ["adc.quantizer=mulaw", "adc.bits=3"]):
        am = to_analog(model, load_hardware("pcm", ov), chips=3, seed=0)
        states.append({n: cb.state((0, 1, 2)) for n, cb in am.crossbars.items()})
    for other in states[1:]:
        for name, st in states[0].items():
            for t0, t1 in zip(st.tiles, other[name].tiles):
                torch.testing.assert_close(t0, t1, atol=0, rtol=0)
    # Programming (before drift and read noise) is the same chip at every time.
    from aimcbench.sim.devices import PCMDevice, make_device
    am = to_analog(model, load_hardware("pcm"), chips=2, seed=0)
    cb = am.crossbars["0"]
    dev = make_device(cb.hw)
    assert isinstance(dev, PCMDevice)
    p1 = dev.program(cb.w_norm, cb.streams((0, 1)))
    am.drift(1e4)
    p2 = dev.program(cb.w_norm, cb.streams((0, 1)))
    torch.testing.assert_close(p1.g_plus, p2.g_plus, atol=0, rtol=0)


def _rel_error(overrides, chips=40):
    torch.manual_seed(0)
    lin = nn.Linear(256, 64, bias=False)
    with torch.no_grad():
        lin.weight.normal_(0, 0.05)
    x = torch.rand(500, 256) * 2 - 1
    y = _run(lin, load_hardware("pcm", overrides), x, chips=chips)
    ref = lin(x).detach()
    return ((y - ref).norm(dim=(1, 2)) / ref.norm()).median().item()


@pytest.mark.parametrize("overrides, aihwkit", [
    ([], 0.13), (["device.prog_noise_scale=2"], 0.22), (["adc.bits=4"], 0.26),
    (["t_inference_s=10000", "drift_compensation=none"], 0.30), (["t_inference_s=10000"], 0.15)])
def test_pcm_linear_layer_error_matches_aihwkit(overrides, aihwkit):
    """Issue 2's reference: Linear(256->64), W ~ N(0, 0.05^2), x ~ U(-1, 1), median relative error over chips
    (aihwkit's figure is a 40-chip median). 200 chips here: a 40-chip median moves by ~0.01 from one seed to the
    next at 4 ADC bits (per-chip std 0.05), which would leave the 0.02 tolerance no room."""
    assert _rel_error(overrides, chips=200) == pytest.approx(aihwkit, abs=0.02)


def test_drift_compensation_restores_output_scale():
    torch.manual_seed(0)
    lin = nn.Linear(128, 32, bias=False)
    x = torch.rand(200, 128) * 2 - 1
    ref = lin(x).detach()
    gain = {}
    for comp in ("none", "global", "per_column"):
        am = to_analog(lin, load_hardware("pcm", [f"drift_compensation={comp}"]), chips=8)
        with torch.no_grad():
            am.drift(1e5)
            y = am(x)
        gain[comp] = ((y * ref).sum() / (ref * ref).sum() / 8).item()  # least-squares gain
    assert gain["none"] < 0.85       # conductances drift down by (t/20 s)^-nu, nu ~ 0.05
    assert gain["global"] == pytest.approx(1.0, abs=0.05)
    assert gain["per_column"] == pytest.approx(1.0, abs=0.05)


def test_layer_selection_first_layer_only():
    model = _cnn()
    am = to_analog(model, load_hardware("weight_noise", ["layers.indices=[0]", "weight_noise.alpha=0.5"]), chips=2)
    assert list(am.crossbars) == ["0"]
    am = to_analog(model, load_hardware("pcm", ["layers.types=[Linear]"]), chips=2)
    assert list(am.crossbars) == ["7", "9"]


def test_rram_separate_adc_clips_at_physical_range_and_handles_signed_inputs():
    torch.manual_seed(0)
    lin = nn.Linear(256, 16, bias=False)
    with torch.no_grad():
        lin.weight.uniform_(0.5, 1.0)  # all positive: every g+ cell high
    hw = load_hardware("rram", ["adc.bits=null"])
    x_pos = torch.full((4, 256), 6.0)  # full-scale ReLU6 inputs: 256 cells near 3 uA >> 45 uA
    y = _run(lin, hw, x_pos, chips=1)[0]
    cb = to_analog(lin, hw).crossbars["0"]
    # Each of the single row array's outputs saturates at 45 uA minus the g- column's baseline current.
    i_minus = 256 * 0.3
    assert i_minus > 45  # the minus column saturates too
    assert torch.allclose(y, torch.zeros_like(y), atol=1e-4)
    x_small = torch.rand(8, 256) * 0.3 - 0.15  # signed, small: no saturation, two input phases
    exact = ["adc.bits=null", "dac.bits=null", "device.program_bits=null"]
    y = _run(lin, load_hardware("rram", exact), x_small, chips=1)[0]
    torch.testing.assert_close(y, lin(x_small).detach(), atol=1e-4, rtol=1e-3)
    assert cb.adc.signed is False


def test_tile_plan_counts_study_002_table_1():
    from aimcbench.models import build_model

    hw = load_hardware("rram")
    vgg = tile_plan(build_model("vgg_block", num_classes=10), hw, (3, 32, 32))
    wrn = tile_plan(build_model("wrn16_8", num_classes=10), hw, (3, 32, 32))
    assert [r["arrays"] for r in vgg] == [1, 2, 4, 6, 12, 20, 32, 1]
    assert sum(r["arrays"] for r in vgg) == 78
    assert sum(r["arrays"] for r in wrn) == 1447
    assert vgg[1]["row_length"] == 288 and vgg[1]["arrays_rows"] == 2  # 28 whole channels of 3x3 per array


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"hardware\.adc\.bits: must be an integer"):
        load_hardware("pcm", ["adc.bits=six"])
    with pytest.raises(ConfigError, match=r"hardware\.adc\.bitz: unknown key; allowed: bits"):
        load_hardware("pcm", ["adc.bitz=6"])
    with pytest.raises(ConfigError, match=r"hardware\.adc\.quantizer: must be one of uniform, mulaw"):
        load_hardware("pcm", ["adc.quantizer=log"])
    with pytest.raises(ConfigError, match=r"hardware\.device\.variation: must be a number in \[0"):
        load_hardware("rram", ["device.variation=-0.1"])
    with pytest.raises(ConfigError, match=r"hardware\.adc\.bound: an ADC with bits = 6 needs a full scale"):
        load_hardware("ideal", ["adc.bits=6", "adc.bound=null"])
    assert load_hardware("ideal", ["adc.bits=6"]).adc.bits == 6
    with pytest.raises(ConfigError, match=r"hardware: no profile 'pcmm'.*allowed: .*pcm"):
        load_hardware("pcmm")
    import yaml
    from aimcbench.sim import config_dir
    data = yaml.safe_load(open(config_dir() / "hardware" / "pcm.yaml"))
    assert hardware_from_dict(data).dac.bits == 12
    del data["dac"]["bits"]  # a profile states how it differs from the defaults (exact converters)
    assert hardware_from_dict(data).dac.bits is None
    data["dac"]["bitz"] = 6
    with pytest.raises(ConfigError, match=r"hardware\.dac\.bitz: unknown key"):
        hardware_from_dict(data)


def test_every_config_field_is_documented():
    docs = field_docs()
    assert len(docs) > 40
    assert all(len(d) > 10 for d in docs.values()), [k for k, d in docs.items() if len(d) <= 10]


@pytest.mark.parametrize("shape, k, d, p, s", [((2, 3, 9, 9), (3, 3), (1, 1), (1, 1), (1, 1)),
                                               ((3, 5, 13, 11), (3, 2), (2, 1), (2, 0), (2, 3))])
def test_im2col_matches_unfold(shape, k, d, p, s):
    from aimcbench.sim.patches import flat_patches, patch_view

    x = torch.rand(*shape)
    view = patch_view(x, k, d, p, s)
    ho, wo = view.shape[1:3]
    cols = flat_patches(view)
    ref = torch.nn.functional.unfold(x, k, d, p, s).transpose(1, 2)
    assert cols.shape[1] == ho * wo
    torch.testing.assert_close(cols, ref, atol=0, rtol=0)


def test_weight_noise_on_bias_perturbs_each_chips_bias():
    torch.manual_seed(0)
    lin = nn.Linear(4, 2000)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(0.5)
    x = torch.zeros(1, 4)
    y = _run(lin, load_hardware("weight_noise", ["weight_noise.alpha=0.2", "weight_noise.on_bias=true"]), x, chips=3)
    rel = y[:, 0] / 0.5 - 1                        # [3 chips, 2000 outputs]: alpha N(0, 1)
    assert rel.std().item() == pytest.approx(0.2, rel=0.05)
    assert not torch.allclose(y[0], y[1])
    y = _run(lin, load_hardware("weight_noise", ["weight_noise.alpha=0.2"]), x, chips=2)
    torch.testing.assert_close(y, torch.full_like(y, 0.5))


class _Detector(nn.Module):
    """Takes a list of images, scores 'regions' in a [regions, features] layout, returns one dict per image."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 5)

    def forward(self, images):
        f = self.conv(torch.stack(images))                       # [N, 8, H, W]
        regions = f.flatten(2).transpose(1, 2).reshape(-1, 8)    # [N*H*W, 8]: not batch-first
        scores = self.head(regions).reshape(len(images), -1, 5)
        return [{"scores": s} for s in scores]


def test_models_with_list_inputs_run_chip_by_chip():
    torch.manual_seed(0)
    det, images = _Detector().eval(), [torch.rand(3, 6, 7), torch.rand(3, 6, 7)]
    ref = det(images)
    with torch.no_grad():
        out = to_analog(det, load_hardware("ideal"), chips=3, chip_chunk=1)(images)
        assert len(out) == 3 and len(out[0]) == 2
        torch.testing.assert_close(out[2][1]["scores"], ref[1]["scores"].detach(), atol=1e-5, rtol=1e-4)
        noisy = to_analog(det, load_hardware("pcm"), chips=2, chip_chunk=1)(images)
        assert not torch.allclose(noisy[0][0]["scores"], noisy[1][0]["scores"])
        alone = to_analog(det, load_hardware("pcm"), chips=[1], chip_chunk=1)(images)
        torch.testing.assert_close(alone[0][0]["scores"], noisy[1][0]["scores"], atol=0, rtol=0)
        assert len(to_analog(det, load_hardware("ideal"), chips=2)(images)) == 2  # chip by chip by default
    with pytest.raises(TypeError, match="chip_chunk=1"):
        to_analog(det, load_hardware("ideal"), chips=2, chip_chunk=2)(images)


@pytest.mark.slow
def test_maskrcnn_runs_on_the_simulator_chip_by_chip():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    m = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    img = [torch.rand(3, 96, 128)]
    with torch.no_grad():
        ref = m(img)[0]
        out = to_analog(m, load_hardware("ideal"), chips=1, chip_chunk=1)(img)[0][0]
    assert out["boxes"].shape == ref["boxes"].shape
    torch.testing.assert_close(out["scores"], ref["scores"], atol=1e-3, rtol=1e-3)


def test_rram_level2_pipeline_is_untiled_with_an_ideal_adc():
    from aimcbench.models import build_model

    hw = load_hardware("rram_l2")
    plan = tile_plan(build_model("vgg_block", num_classes=10), hw, (3, 32, 32))
    assert all(r["arrays"] == 1 for r in plan) and plan[1]["columns"] == 64  # two columns per output, one array
    torch.manual_seed(0)
    lin = nn.Linear(300, 20)
    x = torch.rand(64, 300) * 6.0  # ReLU6-range activations
    y = _run(lin, hw, x, chips=1)[0]
    ref = lin(x).detach()
    assert ((y - ref).norm() / ref.norm()).item() < 0.02  # only 8-bit weights and activations
    y3 = _run(lin, load_hardware("rram"), x, chips=1)[0]   # level 3: 45 uA ADC ranges clip these sums
    assert ((y3 - ref).norm() / ref.norm()).item() > 0.05
