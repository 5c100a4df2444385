"""What a run records about where it ran: git revision, package versions, the compute device."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch


def git_rev() -> str:
    """The repository's HEAD commit (with '+dirty' when tracked files changed), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=False, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False, timeout=10).stdout.strip()
        return (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("aimcbench", "torch", "torchvision", "numpy", "hydra-core", "omegaconf", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def pick_device(name: str) -> str:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def device_text(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def data_provenance(cfg: dict, data, used_dataset: dict | None, log) -> dict:
    """meta.json["data"]: the data actually evaluated (aimcbench.data.data_source) and its fingerprint; logs a
    notice when the embedded MNIST sample stood in for the full set."""
    from aimcbench.data import (
        count_inputs,
        data_source,
        dataset_label,
        inputs_fingerprint,
    )

    dataset = used_dataset or cfg["dataset"]
    out = {"name": dataset_label(dataset), **data_source(dataset), "n_test": count_inputs(data),
           "n_test_requested": cfg["eval"].get("n"), "test_sha256": inputs_fingerprint(data)}
    if out["source"] == "sample" and dataset.get("name") != "images":
        log(f"aimc: dataset {out['name']}: the embedded MNIST sample was evaluated ({out['n_test']} test images, "
            f"eval.n={out['n_test_requested']}), not the full set: meta.json data.source=sample. Put the IDX "
            "files in $AIMC_DATA_DIR for full results.")
    return out


def weights_provenance(digest: str, info: dict) -> dict:
    """meta.json["model_weights"]: the weights' content hash and where they came from."""
    out = {"sha256": digest, "source": info.get("source"), "path": info.get("path"), "cache_key": info.get("key")}
    for key in ("data", "n_train"):  # the training set's fingerprint and size, when the cache says
        if info.get(key) is not None:
            out["train_data" if key == "data" else key] = info[key]
    return out
