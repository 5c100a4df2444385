"""Shared fixtures: an isolated model cache, and composing the real configs without running Hydra jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# Two torch threads per test process; under pytest-xdist (`-n auto`, the README's command) the cores are shared
# out among the workers instead: more busy threads than cores make torch's parallel kernels wait on each other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(2 if _WORKERS == 1 else max(1, (os.cpu_count() or 1) // _WORKERS))


def _has(module: str, attr: str) -> bool:
    try:
        return hasattr(__import__(module, fromlist=[attr]), attr)
    except ImportError:
        return False


needs_sim = pytest.mark.skipif(not _has("aimcbench.sim", "to_analog"), reason="aimcbench.sim not available yet")
needs_metrics = pytest.mark.skipif(not _has("aimcbench.metrics", "psnr"), reason="aimcbench.metrics not available yet")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test trains into a session-wide temporary cache, never the user's ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "aimc-cache"
    monkeypatch.setenv("AIMC_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _restore_logging():
    """In-process `aimc` runs let Hydra configure logging (handlers on the root logger that write to this test's
    captured streams and run directory); put the loggers back so later tests do not log into closed streams."""
    import logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, dict(logging.Logger.manager.loggerDict))
    levels = {name: lg.level for name, lg in saved[2].items() if isinstance(lg, logging.Logger)}
    disabled = {name: lg.disabled for name, lg in saved[2].items() if isinstance(lg, logging.Logger)}
    yield
    for h in root.handlers[:]:
        if h not in saved[0]:
            root.removeHandler(h)
    for h in saved[0]:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(saved[1])
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.setLevel(levels.get(name, logging.NOTSET))
            lg.disabled = disabled.get(name, False)  # Hydra's dictConfig disables the loggers it does not name
            if name.startswith("aimcbench") or name not in levels:
                for h in lg.handlers[:]:
                    lg.removeHandler(h)
                lg.propagate = True


def compose(config_name: str, overrides: list[str] = ()) -> dict:
    """Compose configs/<config_name>.yaml with overrides (Hydra compose API) -> resolved plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from aimcbench.commands._common import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="test"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


# Small, fast settings for end-to-end runs on synthetic data.
FAST = ["dataset=synthetic", "train=quick", "mc.chips=2", "eval.n=64", "eval.batch_size=32"]


def aimc(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    """Run ``python -m aimcbench ARGS`` in a subprocess; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "aimcbench", *args], capture_output=True, text=True,
                          env=full_env, cwd=str(cwd or REPO), timeout=timeout)
