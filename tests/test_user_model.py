"""A user's own network from the command line: ``model._target_`` (a module file in the working directory) with
``model.checkpoint`` (a state dict saved beside it), evaluated like the built-in models; bad targets and bad
checkpoints are one-line errors naming the key. Also a user's dataset class (``dataset._target_``) and the
``dataset.normalize`` setting."""

from __future__ import annotations

import sys
import textwrap

import pandas as pd
import pytest
import torch
from conftest import aimc, compose, needs_metrics, needs_sim

from aimcbench.runner import run_sweep

pytestmark = [needs_sim, needs_metrics]

# The model section of the schema is open: `model._target_=...` as it reads (no `+`).
TARGET = "model._target_"
MOD = "h2_user_nets"  # unique module name: imported once per test session from the fixture's directory
LENET = '''
import torch
from torch import nn


class LeNet(nn.Module):
    """LeNet-style: two 5x5 convolutions with max pooling, one linear classifier, for 1x28x28 images."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 8, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 4 * 4, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


NOT_A_MODEL = 42


def make_list():
    return [1, 2, 3]


class Digits(torch.utils.data.Dataset):
    """A user's dataset class: the synthetic set's images as uint8 numpy arrays, split by a train flag."""

    def __init__(self, train=True, size=300):
        from aimcbench.data import load_split

        x, self.y = load_split("synthetic", "train" if train else "test", limit=size, seed=3)
        self.x = (x[:, 0] * 255).round().to(torch.uint8).numpy()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])
'''


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A directory with the user's module and a trained LeNet state dict (lenet.pt) beside it."""
    d = tmp_path_factory.mktemp("user")
    (d / f"{MOD}.py").write_text(textwrap.dedent(LENET))
    sys.path.insert(0, str(d))
    mod = __import__(MOD)
    from aimcbench.data import load_split
    from aimcbench.train import train_model

    torch.manual_seed(0)
    net = mod.LeNet()
    x, y = load_split("synthetic", "train", limit=1000, seed=0)
    train_model(net, x, y, "classification", {"steps": 80, "batch_size": 32, "lr": 3e-3, "seed": 0, "threads": 2})
    torch.save(net.state_dict(), d / "lenet.pt")
    yield d
    sys.path.remove(str(d))


def _cfg(user_dir, *extra: str) -> dict:
    return compose("sweep", [f"{TARGET}={MOD}.LeNet", f"model.checkpoint={user_dir / 'lenet.pt'}",
                             "dataset=synthetic", "mc.chips=2", "eval.n=200", "eval.batch_size=100", *extra])


def test_ideal_chips_reproduce_the_modules_own_accuracy_exactly(user_dir, tmp_path):
    from aimcbench.data import load_split
    from aimcbench.metrics import accuracy

    cfg = _cfg(user_dir, "hardware=ideal", "sweep=variation", "sweep.values=[0.0]")
    meta = run_sweep(cfg, tmp_path, report=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    digital = pd.read_csv(tmp_path / "digital.csv")
    # The module's own accuracy, computed here without aimcbench's model code: its weights, the same test images.
    net = __import__(MOD).LeNet()
    net.load_state_dict(torch.load(user_dir / "lenet.pt"))
    x, y = load_split("synthetic", "test", limit=200, seed=cfg["mc"]["seed"])
    own = float(accuracy(net.eval()(x), y))
    assert 0.3 < own < 1.0  # trained well above chance (10 classes), so an exact match means something
    assert digital["value"].tolist() == [own]
    assert chips["value"].tolist() == [own, own]
    assert meta["model"] == "LeNet" and meta["model_cache"]["source"] == "checkpoint"


def test_pcm_chips_run(user_dir, tmp_path):
    cfg = _cfg(user_dir, "hardware=pcm", "sweep=adc_bits", "sweep.values=[8]")
    run_sweep(cfg, tmp_path, report=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    assert len(chips) == 2 and chips["value"].between(0, 1).all()


def test_user_model_without_checkpoint_is_trained_and_cached_under_its_target(user_dir, tmp_path):
    from aimcbench.train import cache_key, load_or_train

    model_cfg = {"_target_": f"{MOD}.LeNet", "task": "classification", "checkpoint": None, "classes": 10}
    train = {"steps": 3, "epochs": None, "batch_size": 16, "lr": 1e-3, "seed": 0, "threads": 1, "limit": 64}
    _, info = load_or_train(model_cfg, {"name": "synthetic"}, train, cache_dir=tmp_path, log=lambda m: None)
    _, info2 = load_or_train(model_cfg, {"name": "synthetic"}, train, cache_dir=tmp_path, log=lambda m: None)
    assert info["trained"] and not info2["trained"] and info["path"].split("/")[-1].startswith("LeNet-")
    assert cache_key(model_cfg, {"name": "synthetic"}, train, "fp") != \
        cache_key({**model_cfg, "classes": 5}, {"name": "synthetic"}, train, "fp")


@pytest.mark.parametrize("target, checkpoint, key, fragment", [
    ("h2_no_such_module.LeNet", None, "model._target_", "no module named 'h2_no_such_module'"),
    (f"{MOD}.Missing", None, "model._target_", "has no attribute 'Missing'"),
    (f"{MOD}.NOT_A_MODEL", None, "model._target_", "not an nn.Module class or factory"),
    (f"{MOD}.make_list", None, "model._target_", "returned a list, not a torch.nn.Module"),
    (f"{MOD}.LeNet", "wrong", "model.checkpoint", "shape of head.weight is (10, 32), model has (7, 128)"),
    (f"{MOD}.LeNet", "missing", "model.checkpoint", "no file"),
])
def test_bad_targets_and_checkpoints_are_one_line_errors_naming_the_key(user_dir, tmp_path, target, checkpoint,
                                                                         key, fragment):
    from aimcbench.commands._common import user_errors
    from aimcbench.train import load_or_train

    model_cfg = {"_target_": target, "task": "classification", "checkpoint": None}
    if checkpoint == "wrong":  # a LeNet with 7 classes and a 32-wide head does not take a 10-class state dict
        torch.save({"head.weight": torch.zeros(10, 32)}, tmp_path / "wrong.pt")
        model_cfg.update(checkpoint=str(tmp_path / "wrong.pt"), classes=7)
    elif checkpoint == "missing":
        model_cfg["checkpoint"] = str(tmp_path / "nothing.pt")
    with pytest.raises(user_errors()) as err:
        load_or_train(model_cfg, {"name": "synthetic"}, {"seed": 0, "limit": 8}, cache_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"{key}: ") and fragment in msg and "\n" not in msg, msg


def test_unknown_keyword_is_an_error_but_the_default_models_keys_are_not(user_dir):
    from aimcbench.models import ModelError, build_from_config, check_model_config

    # model._target_ over the default model=mlp section: mlp's `hidden` is not the target's
    net = build_from_config({"name": "mlp", "hidden": [256], "task": "classification", "_target_": f"{MOD}.LeNet"})
    assert type(net).__name__ == "LeNet"
    with pytest.raises(ModelError, match=r"^model._target_: .*takes no keyword argument\(s\) depth .*classes"):
        check_model_config({"_target_": f"{MOD}.LeNet", "depth": 3})


def test_cli_runs_a_module_from_the_working_directory_and_exits_2_on_a_bad_checkpoint(user_dir, tmp_path):
    common = ["dataset=synthetic", "hardware=pcm", "sweep=adc_bits", "sweep.values=[8]", "mc.chips=1", "eval.n=50",
              "threads=1"]
    ok = aimc("sweep", f"{TARGET}={MOD}.LeNet", "model.checkpoint=lenet.pt", *common,
              f"hydra.run.dir={tmp_path / 'ok'}", cwd=user_dir)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert len(pd.read_parquet(tmp_path / "ok" / "chips.parquet")) == 1
    torch.save({"head.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    bad = aimc("sweep", f"{TARGET}={MOD}.LeNet", f"model.checkpoint={tmp_path / 'bad.pt'}", *common,
               f"hydra.run.dir={tmp_path / 'bad'}", cwd=user_dir)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr[-2000:]
    assert lines[0].startswith("aimc: error: model.checkpoint: ") and "head.weight" in lines[0]


def test_a_user_dataset_class_with_normalization(user_dir, tmp_path):
    from aimcbench.data import check_dataset_config, load_from_config, load_split

    ds = {"_target_": f"{MOD}.Digits", "size": 40, "normalize": {"mean": [0.5], "std": [0.25]}}
    check_dataset_config(ds)
    x, y = load_from_config(ds, "test", limit=10, seed=1)
    raw, ry = load_split("synthetic", "test", limit=40, seed=3)
    idx = torch.from_numpy(__import__("numpy").sort(__import__("numpy").random.default_rng(1).choice(40, 10, False)))
    expect = ((raw[idx] * 255).round() / 255 - 0.5) / 0.25
    assert x.shape == (10, 1, 28, 28) and torch.equal(y, ry[idx]) and torch.allclose(x, expect, atol=1e-6)


@pytest.mark.parametrize("target, fragment", [("h2_no_such_module.LeNet", "no module named"),
                                              (f"{MOD}.NOT_A_MODEL", "not an nn.Module class or factory")])
def test_a_bad_target_stops_before_any_work(user_dir, tmp_path, capsys, monkeypatch, target, fragment):
    from aimcbench.cli import main

    monkeypatch.chdir(user_dir)
    with pytest.raises(SystemExit) as info:
        main(["sweep", f"{TARGET}={target}", "dataset=synthetic", f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("aimc: error: model._target_: ") and fragment in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()
