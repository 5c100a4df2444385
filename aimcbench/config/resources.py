"""What a command needs from the machine, checked before any file is written: the device, a user's checkpoint and
the memory of a sweep.

The memory of a sweep point is estimated from the config alone: the model is built on torch's ``meta`` device
(shapes, no storage) and one meta batch runs through it to find the largest layer output. The estimate is

    fixed   = test images held (eval.n x image size x 4 bytes) + the digital model (4 bytes per parameter)
              + one result row per chip and point (CHIP_ROW_BYTES)
    per chip = activations of one batch (4 live copies of the largest layer output, float32, as the simulator
              counts them) + programming the chip's analog weights (PROGRAM_BYTES_PER_WEIGHT per weight)

and the sweep is refused (one line naming the key to change) when ``fixed + one chip`` does not fit the budget
``mc.max_memory_gb`` (null: the memory available now). Otherwise ``fixed`` is taken off the budget and the rest
bounds how many chips the simulator runs at once (:func:`sim_budget_gb`, given to ``to_analog``).
"""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import UsageError

GIB = 2**30
# One row of chips.parquet / point tables per chip and point in memory (pandas, a few float columns), plus the
# chip's bookkeeping (its id in a tuple, its noise generators): measured order of magnitude, with a margin.
CHIP_ROW_BYTES = 512
# The simulator keeps its own margin: never give it less than this for a chunk of chips (GiB).
_MIN_SIM_GB = 0.05


def available_memory_gb() -> float:
    """Memory the sweep may use: MemAvailable of /proc/meminfo (Linux), else physical pages x page size."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / GIB
    except (ValueError, OSError, AttributeError):
        return 4.0  # unknown platform: the simulator's historical default


def budget_gb(cfg: dict) -> float:
    """``mc.max_memory_gb``, or the memory available now when it is null."""
    set_gb = (cfg.get("mc") or {}).get("max_memory_gb")
    return float(set_gb) if set_gb is not None else available_memory_gb()


def check_device(cfg: dict) -> None:
    """``device=cuda`` on a machine without a usable CUDA device stops here, not in the middle of a run."""
    if str(cfg.get("device", "cpu")).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("device", "no CUDA device on this machine (torch.cuda.is_available() is false); "
                                       "use device=cpu or device=auto")


def meta_model(model_cfg: dict) -> Any:
    """The configured model built on the meta device (shapes only), or None when it cannot be built that way
    (e.g. a builder that loads weights files); build errors of the user's config are left to the job."""
    import torch

    from aimcbench.models import build_from_config

    try:
        with torch.device("meta"):
            return build_from_config({k: v for k, v in model_cfg.items() if k != "checkpoint"})
    except Exception:  # noqa: BLE001 - no estimate is possible; the job reports real errors itself
        return None


def check_checkpoint(cfg: dict, model: Any = None) -> None:
    """``model.checkpoint``: the file exists, is a state dict and fits the configured model (shapes checked on
    the meta device, so nothing is allocated). One line naming the tensor that does not fit."""
    path = (cfg.get("model") or {}).get("checkpoint")
    if not path:
        return
    from aimcbench.models.checkpoint import ModelError, load_checkpoint, read_state_dict

    try:
        if model is None:
            read_state_dict(path, "model.checkpoint")
        else:
            load_checkpoint(model, path)
    except ModelError as err:
        key, _, text = str(err).partition(": ")
        raise UsageError(key, text) from None


def _input_shape(cfg: dict) -> tuple[int, ...] | None:
    from aimcbench.data import DATASETS

    model, dataset = cfg.get("model") or {}, cfg.get("dataset") or {}
    shape = model.get("input_shape") or (DATASETS.get(dataset.get("name")) or {}).get("input_shape")
    return tuple(int(s) for s in shape) if shape else None


def _test_images(cfg: dict) -> int | None:
    """Test images a point holds: eval.n, at most the split's size (synthetic sets generate eval.n images)."""
    from aimcbench.data import DATASETS

    dataset = cfg.get("dataset") or {}
    n = (cfg.get("eval") or {}).get("n")
    info = DATASETS.get(dataset.get("name")) or {}
    size = (info.get("sizes") or (None, None))[1]
    synthetic = str(dataset.get("name", "")).startswith("synthetic")
    if n is None:
        return None if synthetic else size
    return int(n) if synthetic or size is None else min(int(n), int(size))


def _layer_outputs(model: Any, shape: tuple[int, ...]) -> int | None:
    """Largest activation per sample (layer outputs; a conv layer's unfolded input) of one meta forward."""
    import torch

    sizes = [math.prod(shape)]

    def hook(mod, args, out):
        if isinstance(out, torch.Tensor):
            sizes.append(out[:1].numel())
        if isinstance(mod, torch.nn.Conv2d) and args and isinstance(args[0], torch.Tensor):
            sizes.append(args[0][:1].numel() * mod.kernel_size[0] * mod.kernel_size[1])

    hooks = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(torch.empty((1, *shape), device="meta"))
    except Exception:  # noqa: BLE001 - a model that does not run on meta tensors: no activation estimate
        return None
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def estimate(cfg: dict, model: Any = None) -> dict[str, float]:
    """Bytes of a sweep point: ``fixed`` (data, model, result rows), ``chip`` (one chip's weights programmed),
    ``batch`` (one chip's activations), ``analog_weights`` and ``chips`` (see the module docstring)."""
    from aimcbench.sim import hardware_from_dict, select_layers
    from aimcbench.sim.convert import PROGRAM_BYTES_PER_WEIGHT

    ev, mc = cfg.get("eval") or {}, cfg.get("mc") or {}
    model = meta_model(cfg["model"]) if model is None else model
    shape = _input_shape(cfg)
    out: dict[str, float] = {"data": 0.0, "params": 0.0, "analog_weights": 0.0, "batch": 0.0,
                             "chips": float(mc.get("chips", 1))}
    n = _test_images(cfg)
    if n is not None and shape is not None:
        out["data"] = 4.0 * n * math.prod(shape)
    if model is not None:
        out["params"] = 4.0 * sum(p.numel() for p in model.parameters())
        try:
            layers = select_layers(model, hardware_from_dict(cfg["hardware"])) if "hardware" in cfg else {}
        except Exception:  # noqa: BLE001 - a bad profile is reported by the config checks
            layers = {}
        out["analog_weights"] = float(sum(m.weight.numel() for m in layers.values()))
        act = _layer_outputs(model, shape) if shape is not None else None
        if act is not None:  # a forward never holds more images than the test set has
            batch = int(ev.get("batch_size", 1)) if n is None else min(int(ev.get("batch_size", 1)), max(n, 1))
            out["batch"] = 16.0 * batch * act
    points = len((cfg.get("sweep") or {}).get("values") or [1])
    out["rows"] = CHIP_ROW_BYTES * out["chips"] * max(points, 1)
    out["chip"] = PROGRAM_BYTES_PER_WEIGHT * out["analog_weights"]
    out["fixed"] = out["data"] + out["params"] + out["rows"]
    return out


def _gb(nbytes: float) -> str:
    gb = nbytes / GIB
    return f"{gb:.2g} GB" if gb < 10 else f"{gb:,.0f} GB"


def _budget_words(cfg: dict) -> str:
    set_gb = (cfg.get("mc") or {}).get("max_memory_gb")
    if set_gb is not None:
        return f"mc.max_memory_gb={set_gb}"
    return f"{_gb(budget_gb(cfg) * GIB)} available; mc.max_memory_gb sets the budget"


def check_memory(cfg: dict, model: Any = None) -> None:
    """Refuse a sweep whose estimate does not fit ``mc.max_memory_gb`` even with one chip at a time."""
    budget = budget_gb(cfg) * GIB
    est = estimate(cfg, model)
    where = _budget_words(cfg)
    if est["data"] > budget / 2:
        raise UsageError("eval.n", f"{_gb(est['data'])} of test images do not fit ({where}); use a smaller eval.n")
    if est["rows"] > budget / 2:
        raise UsageError("mc.chips", f"{int(est['chips']):,} chips need {_gb(est['rows'])} for their result rows "
                                     f"alone ({where}); use fewer chips (e.g. mc.chips=10000) or several sweeps "
                                     "with another mc.seed")
    if est["fixed"] + est["chip"] > budget:
        key = "model.hidden" if "hidden" in (cfg.get("model") or {}) else "model"
        raise UsageError(key, f"the model needs {_gb(est['fixed'] + est['chip'])} for one programmed chip "
                              f"({int(est['analog_weights']):,} analog weights; {where}); use a smaller model or "
                              "raise mc.max_memory_gb")
    if est["fixed"] + est["chip"] + est["batch"] > budget:
        raise UsageError("eval.batch_size", f"one chip's activations at eval.batch_size={cfg['eval']['batch_size']} "
                                            f"need {_gb(est['batch'])} ({where}); use a smaller eval.batch_size")


def sim_budget_gb(cfg: dict) -> float:
    """What is left of the budget for the simulator's chips after the fixed part (see ``estimate``), in GiB:
    the ``max_memory_gb`` of ``aimcbench.sim.to_analog``."""
    est = estimate(cfg)
    return max(_MIN_SIM_GB, (budget_gb(cfg) * GIB - est["fixed"]) / GIB)


def check_resources(command: str, cfg: dict) -> None:
    """Device, checkpoint and (for sweeps) memory, from the config alone: nothing is allocated or written."""
    if "device" in cfg:
        check_device(cfg)
    if "model" not in cfg:
        return
    # Detection models (Mask R-CNN) load their weights while they are built: only the checkpoint file is checked.
    detection = (cfg["model"].get("task") or "classification") == "detection"
    model = None if detection else meta_model(cfg["model"])
    check_checkpoint(cfg, model)
    if model is not None and command in ("train", "optimize", "sweep"):
        # training holds the weights, their gradients and Adam's two moments: 16 bytes per parameter
        params = sum(p.numel() for p in model.parameters())
        if 16.0 * params > budget_gb(cfg) * GIB:
            key = "model.hidden" if "hidden" in cfg["model"] else "model"
            raise UsageError(key, f"{params:,} parameters need {_gb(16.0 * params)} to train "
                                  f"({_budget_words(cfg)}); use a smaller model")
    if command == "sweep" and not detection:
        check_memory(cfg, model)


def notices(command: str, cfg: dict) -> list[str]:
    """What the user should know before a run that is not an error: eval.n above a fixed test split's size."""
    from aimcbench.data import DATASETS

    if command != "sweep":
        return []
    dataset = cfg.get("dataset") or {}
    n = (cfg.get("eval") or {}).get("n")
    size = ((DATASETS.get(dataset.get("name")) or {}).get("sizes") or (None, None))[1]
    if n is None or size is None or str(dataset.get("name", "")).startswith("synthetic") or int(n) <= int(size):
        return []
    return [f"aimc: eval.n={n} is more than the {size} test images of {dataset['name']}: all {size} are evaluated"]
