"""torchvision classifiers (model=resnet18 ... mobilenet_v2) and the ImageNet validation loader (dataset=imagenet).

Nothing can be downloaded here: models use weights=None, and ImageNet is a tiny fake ImageFolder of random
64x64 JPEGs built in a temporary directory.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from aimcbench.data import DataError, load_split
from aimcbench.models import build_model
from aimcbench.models.torchvision_cls import ARCHS, TorchvisionLoadError
from aimcbench.train import CheckpointError, load_or_train

from conftest import compose, needs_sim


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_each_arch_builds_random_and_gives_logits(arch):
    """weights=None: seeded random init, [B, num_classes] logits on small inputs, not marked pretrained."""
    model = build_model("torchvision", arch=arch, num_classes=5, seed=3)  # ImageNet stem: 32 px -> 8 px, cheap
    with torch.no_grad():
        y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    assert model.aimc_pretrained is False and not model.training
    if arch == "resnet18":  # same seed -> same weights; another seed -> other weights
        same = build_model("torchvision", arch=arch, num_classes=5, seed=3)
        other = build_model("torchvision", arch=arch, num_classes=5, seed=4)
        assert torch.equal(same.fc.weight, model.fc.weight) and not torch.equal(other.fc.weight, model.fc.weight)


def test_cifar_stem_keeps_spatial_resolution():
    """The CIFAR stem (3x3 stride 1, no max-pool) keeps 32x32 after the stem; the ImageNet one gives 8x8."""
    cifar = build_model("torchvision", arch="resnet18", num_classes=10, cifar_stem=True)
    plain = build_model("torchvision", arch="resnet18", num_classes=10)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert cifar.maxpool(cifar.conv1(x)).shape[-1] == 32
        assert plain.maxpool(plain.conv1(x)).shape[-1] == 8
    mob = build_model("torchvision", arch="mobilenet_v2", num_classes=10, cifar_stem=True)
    assert mob.features[0][0].stride == (1, 1)


def test_weights_path_round_trip_and_marks_pretrained(tmp_path):
    src = build_model("torchvision", arch="resnet18", num_classes=4, seed=1)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    loaded = build_model("torchvision", arch="resnet18", num_classes=4, seed=2, weights_path=str(path))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), loaded(x))
    assert loaded.aimc_pretrained is True and loaded.aimc_weights_id.startswith("file:")
    # the training cache returns it as given, without training
    model, info = load_or_train({"name": "torchvision", "task": "classification", "arch": "resnet18",
                                 "num_classes": 4, "weights_path": str(path)}, {"name": "imagenet"}, {"seed": 0})
    assert info["source"] == "pretrained" and info["trained"] is False and info["key"]
    with torch.no_grad():
        assert torch.equal(model(x), src(x))


def test_bad_settings_raise_one_line_checkpoint_errors(tmp_path):
    (tmp_path / "junk.pt").write_text("not a state dict")
    torch.save(build_model("torchvision", arch="resnet18", num_classes=10).state_dict(), tmp_path / "r10.pt")
    cases = [
        (dict(arch="resnet9"), "model.arch"),
        (dict(arch="resnet18", weights="coco"), "model.weights"),
        (dict(arch="resnet18", weights_path=str(tmp_path / "nope.pt")), "model.weights_path"),
        (dict(arch="resnet18", weights_path=str(tmp_path / "junk.pt")), "model.weights_path"),
        (dict(arch="resnet18", num_classes=1000, weights_path=str(tmp_path / "r10.pt")), "model.weights_path"),
        (dict(arch="resnet18", weights="imagenet", num_classes=10), "model.weights"),
    ]
    for kwargs, key in cases:
        with pytest.raises(TorchvisionLoadError) as err:
            build_model("torchvision", **kwargs)
        assert isinstance(err.value, CheckpointError) and str(err.value).startswith(key), str(err.value)
        assert "\n" not in str(err.value)


def test_imagenet_weights_unavailable_names_the_key_and_weights_path(monkeypatch, tmp_path):
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # surely no cached file
    with pytest.raises(TorchvisionLoadError) as err:
        build_model("torchvision", arch="resnet18", weights="imagenet")
    msg = str(err.value)
    assert msg.startswith("model.weights=imagenet") and "model.weights_path" in msg and "\n" not in msg


def test_bad_weights_path_exits_2_through_aimc_sweep(tmp_path, monkeypatch, capsys):
    from aimcbench.cli import main

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as info:
        main(["sweep", "model=resnet18", f"model.weights_path={tmp_path / 'missing.pth'}", "dataset=imagenet",
              f"dataset.data_dir={tmp_path}", "mc.chips=1", "eval.n=2", "sweep.values=[8]", "threads=1",
              f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert info.value.code == 2, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("aimc: error: model.weights_path:"), err
    assert "missing.pth" in lines[0]


# ----------------------------------------------------------------------------------------- ImageNet data
@pytest.fixture
def fake_imagenet(tmp_path):
    """<tmp>/val/<wnid>/*.JPEG with 2 classes x 5 random 64x64 images; folder names unsorted on purpose."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for wnid, n in (("n02000002", 5), ("n01000001", 5)):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        for i in range(n):
            # class n01... is dark, n02... bright: the labels can be checked from the pixels
            lo, hi = (0, 80) if wnid.startswith("n01") else (170, 255)
            Image.fromarray(rng.integers(lo, hi, (64, 64, 3), dtype=np.uint8)).save(
                tmp_path / "val" / wnid / f"ILSVRC2012_val_{wnid}_{i}.JPEG", quality=95)
    return tmp_path


def test_fake_imagenet_labels_shape_and_normalization(fake_imagenet):
    x, y = load_split("imagenet", "test", data_dir=str(fake_imagenet))
    assert x.shape == (10, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [0] * 5 + [1] * 5                     # sorted wnids: n01... -> 0, n02... -> 1
    means = x.mean(dim=(1, 2, 3))
    assert (means[:5] < 0).all() and (means[5:] > 0.5).all()   # dark/bright after ImageNet mean/std


def test_limit_is_a_seeded_subset_chosen_before_decoding(fake_imagenet, monkeypatch):
    import aimcbench.data.imagenet as inet

    opened = []
    real = inet._decode
    monkeypatch.setattr(inet, "_decode", lambda s, r, c: (opened.extend(s), real(s, r, c))[1])
    x3, y3 = load_split("imagenet", "test", data_dir=str(fake_imagenet), limit=3, seed=1)
    assert x3.shape[0] == 3 and len(opened) == 3                # only 3 files decoded
    again, _ = load_split("imagenet", "test", data_dir=str(fake_imagenet), limit=3, seed=1)
    assert torch.equal(x3, again)
    opened.clear()
    subsets = set()
    for seed in range(8):
        load_split("imagenet", "test", data_dir=str(fake_imagenet), limit=3, seed=seed)
        subsets.add(tuple(sorted(p for p, _ in opened)))
        opened.clear()
    assert len(subsets) > 1                                     # other seeds draw other subsets


def test_missing_val_or_train_dir_raises_one_line_data_errors(tmp_path):
    with pytest.raises(DataError) as err:
        load_split("imagenet", "test", data_dir=str(tmp_path / "nowhere"))
    assert str(err.value).startswith("dataset.data_dir") and "val/<wnid>/*.JPEG" in str(err.value)
    with pytest.raises(DataError) as err:  # the train split is read (NaBN calibration) when its folder exists
        load_split("imagenet", "train", data_dir=str(tmp_path))
    assert "train/<wnid>/*.JPEG" in str(err.value) and "\n" not in str(err.value)


def test_configs_compose():
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2", "mobilenet_v2"):
        cfg = compose("sweep", [f"model={name}", "dataset=imagenet"])
        assert cfg["model"]["name"] == "torchvision" and cfg["model"]["arch"] == name
        assert cfg["model"]["weights"] == "imagenet" and cfg["dataset"]["shape"] == [3, 224, 224]
    for depth in (20, 32, 56):
        cfg = compose("sweep", [f"model=resnet{depth}"])["model"]
        assert cfg["name"] == "resnet_cifar" and cfg["depth"] == depth and cfg["input_shape"] == [3, 32, 32]


@needs_sim
def test_sweep_evaluates_pretrained_model_without_training(fake_imagenet, monkeypatch, tmp_path):
    """aimc sweep model=resnet18 ... dataset=imagenet runs to the end and never trains (pretrained: true)."""
    import aimcbench.data.imagenet as inet
    from aimcbench.cli import main

    monkeypatch.setattr(inet, "RESIZE", 40)  # small images keep this CPU test fast (default 256/224)
    monkeypatch.setattr(inet, "CROP", 32)
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = tmp_path / "run"
    main(["sweep", "model=resnet18", "model.weights=null", "model.pretrained=true", "dataset=imagenet",
          f"dataset.data_dir={fake_imagenet}", "hardware=pcm", "mc.chips=2", "eval.n=8", "sweep.values=[8]",
          "threads=1", f"hydra.run.dir={run}"])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["n_test"] == 8
    assert meta["model_cache"] == {"path": None, "source": "pretrained", "trained": False}
    import pandas as pd

    chips = pd.read_parquet(run / "chips.parquet")
    acc = chips[chips.metric == "accuracy"]
    assert len(acc) == 2 and acc["value"].between(0, 1).all()
    cache = os.path.join(os.environ["AIMC_CACHE_DIR"], "models")
    assert not any(f.startswith("torchvision") for f in (os.listdir(cache) if os.path.isdir(cache) else []))
