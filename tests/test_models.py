"""Tests for aimcbench.models: parameter counts, study 002 Table 1 shapes, forward shapes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aimcbench.models import MODELS, analog_parameter_count, build_model

# Study 002 Table 1 filter shapes, written as in the paper: (k, k, in, out) for convs, (in, out) for FC.
VGG_TABLE1 = [(3, 3, 3, 32), (3, 3, 32, 32), (3, 3, 32, 64), (3, 3, 64, 64), (3, 3, 64, 128),
              (3, 3, 128, 128), (2048, 128), (128, 10)]
VGG_TABLE1_INPUTS = [(3, 32, 32), (32, 32, 32), (32, 16, 16), (64, 16, 16), (64, 8, 8), (128, 8, 8),
                     (2048,), (128,)]
WRN_TABLE1 = [
    (3, 3, 3, 16),                                                            # G1 conv
    (3, 3, 16, 128), (3, 3, 128, 128), (1, 1, 16, 128),                       # G2 MB1 conv1/conv2/res
    (3, 3, 128, 128), (3, 3, 128, 128),                                       # G2 MB2
    (3, 3, 128, 256), (3, 3, 256, 256), (1, 1, 128, 256),                     # G3 MB1
    (3, 3, 256, 256), (3, 3, 256, 256),                                       # G3 MB2
    (3, 3, 256, 512), (3, 3, 512, 512), (1, 1, 256, 512),                     # G4 MB1
    (3, 3, 512, 512), (3, 3, 512, 512),                                       # G4 MB2
    (512, 10),                                                                # FC
]


def analog_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def table_shape(layer):
    """A layer's weight shape in Table 1 notation."""
    if isinstance(layer, nn.Conv2d):
        out_c, in_c, kh, kw = layer.weight.shape
        return (kh, kw, in_c, out_c)
    return (layer.in_features, layer.out_features)


def table1_arrays(shape, rows=256, cols=64):
    """Study 002 array count: channel-aligned conv rows, two columns (cells) per output."""
    if len(shape) == 4:
        k, _, c_in, c_out = shape
        row_arrays = math.ceil(c_in / (rows // (k * k)))
    else:
        c_in, c_out = shape
        row_arrays = math.ceil(c_in / rows)
    return row_arrays * math.ceil(2 * c_out / cols)


def test_dae_parameter_counts_and_output():
    model = build_model("dae")
    assert sum(p.numel() for p in model.parameters()) == 94_321
    assert analog_parameter_count(model) == 88_384
    assert len([m for m in analog_layers(model) if isinstance(m, nn.Conv2d)]) == 3
    assert len([m for m in analog_layers(model) if isinstance(m, nn.Linear)]) == 4
    model.eval()
    with torch.no_grad():
        y = model(torch.rand(3, 1, 28, 28))
    assert y.shape == (3, 1, 28, 28)
    assert torch.all(y > 0) and torch.all(y < 1)


def test_analog_count_excludes_transposed_and_batchnorm():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ConvTranspose2d(2, 1, 3),
                          nn.Linear(4, 3, bias=False))
    assert analog_parameter_count(model) == (2 * 9 + 2) + 12


@pytest.mark.parametrize("hidden, sizes", [([256], [784, 256, 10]), ([500, 500], [784, 500, 500, 10])])
def test_mlp(hidden, sizes):
    model = build_model("mlp", hidden=hidden)
    layers = analog_layers(model)
    assert [layers[0].in_features] + [l.out_features for l in layers] == sizes
    assert analog_parameter_count(model) == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(model(x), model(x.flatten(1)))
    assert model(x).shape == (4, 10)


def test_mlp_learns():
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[32])
    x, y = torch.rand(64, 784), torch.randint(0, 10, (64,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(50):
        loss = nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_vgg_block_matches_table1():
    model = build_model("vgg_block", num_classes=10)
    layers = analog_layers(model)
    assert [table_shape(l) for l in layers] == VGG_TABLE1
    assert sum(table1_arrays(table_shape(l)) for l in layers) == 78
    assert all(isinstance(m, nn.ReLU6) for m in model if isinstance(m, (nn.ReLU, nn.ReLU6)))
    seen = []
    hooks = [l.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[1:]))) for l in layers]
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert seen == VGG_TABLE1_INPUTS and out.shape == (2, 10)


def test_wrn16_8_matches_table1():
    model = build_model("wrn16_8", num_classes=10)
    layers = analog_layers(model)
    assert [table_shape(l) for l in layers] == WRN_TABLE1
    assert sum(table1_arrays(table_shape(l)) for l in layers) == 1447
    assert len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 13
    # Resolution per group (the consistent rows of Table 1): G2 at 32x32, G3 MB2 at 16x16, G4 MB2 at 8x8.
    seen = {}
    names = {"blocks.0.conv1": (16, 32, 32), "blocks.3.conv1": (256, 16, 16),
             "blocks.5.conv2": (512, 8, 8)}
    mods = dict(model.named_modules())
    for name in names:
        mods[name].register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, tuple(i[0].shape[1:])))
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert seen == names


def test_wrn_tiny_and_cifar100():
    model = build_model("wrn16_8", widen_factor=1, num_classes=100, activation="relu")
    shapes = [table_shape(l) for l in analog_layers(model)]
    assert shapes[0] == (3, 3, 3, 16) and shapes[-1] == (64, 100)
    assert sum(len(s) == 4 and s[0] == 1 for s in shapes) == 2   # only G3, G4 change shape at k=1
    x = torch.rand(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 100)
    out.sum().backward()
    assert model.stem.weight.grad is not None and model.stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_resnet_cifar_depths(depth):
    model = build_model("resnet_cifar", depth=depth, num_classes=10, width_mult=0.5)
    layers = analog_layers(model)
    three_by_three = [l for l in layers if isinstance(l, nn.Conv2d) and l.kernel_size == (3, 3)]
    shortcuts = [l for l in layers if isinstance(l, nn.Conv2d) and l.kernel_size == (1, 1)]
    assert len(three_by_three) + 1 == depth          # weighted layers = convs + FC
    assert len(shortcuts) == 2                       # option B projections at the two downsamplings
    assert [table_shape(s)[2:] for s in shortcuts] == [(8, 16), (16, 32)]
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet20_full_width_param_count():
    # He et al. report ~0.27M parameters for ResNet-20 (option A); option B adds two 1x1 projections.
    model = build_model("resnet_cifar", depth=20)
    assert 0.26e6 < sum(p.numel() for p in model.parameters()) < 0.28e6


def test_vgg_width_mult_and_input_channels():
    model = build_model("vgg_block", width_mult=0.25, num_classes=100, in_channels=1, image_size=32)
    shapes = [table_shape(l) for l in analog_layers(model)]
    assert shapes[0] == (3, 3, 1, 8) and shapes[-2] == (512, 32) and shapes[-1] == (32, 100)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 100)


def test_bad_requests():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*vgg_block"):
        build_model("vgg")
    with pytest.raises(ValueError, match="unknown parameter.*hiden.*allowed: .*hidden"):
        build_model("mlp", hiden=[10])
    with pytest.raises(ValueError, match="depth must be 6n\\+4"):
        build_model("wrn16_8", depth=15)
    with pytest.raises(ValueError, match="depth must be 6n\\+2"):
        build_model("resnet_cifar", depth=21)
    with pytest.raises(ValueError, match="activation 'gelu'.*relu6"):
        build_model("vgg_block", activation="gelu")


def test_registry_complete():
    assert set(MODELS) == {"mlp", "dae", "vgg_block", "wrn16_8", "resnet_cifar", "maskrcnn", "torchvision"}
