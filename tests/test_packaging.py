"""The built wheel works on its own: installed in a fresh venv and run from an empty directory.

The checkout must not be importable there (no PYTHONPATH, cwd outside the repo), so a file missing from the
wheel (a config, a preset, the sample data, the Hydra search-path plugin) fails here and not on a user's machine.
The venv sees this machine's site-packages (torch etc.; nothing is downloaded); the wheel goes into the venv's
own site-packages, which come first, and the test checks that ``aimcbench`` is imported from there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("aimc", "aimc-sweep", "aimc-train", "aimc-tiles", "aimc-report", "aimc-optimize")


def _run(args: list, cwd: Path, env: dict, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """(venv bin dir, empty working dir, env, wheel path): the wheel built from this checkout, installed."""
    root = tmp_path_factory.mktemp("packaging")
    # Build from a copy: setuptools reuses ./build/lib, where a module deleted from the tree would linger
    # and slip into the wheel; a copy also keeps concurrent runs apart.
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for pkg in ("aimcbench", "hydra_plugins"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = root / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", dist, src], cwd=root, env=dict(os.environ))
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = dist.glob("aimcbench-*.whl")

    venv = root / "venv"
    # The venv runs this interpreter's pip (visible through --system-site-packages): no pip install in it.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    bindir = venv / "bin"
    # --ignore-installed: the editable checkout in the system site-packages is neither reused nor touched.
    inst = _run([bindir / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                 "--no-warn-script-location", wheel], cwd=root, env=dict(os.environ))
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-2000:]

    work = root / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["AIMC_CACHE_DIR"] = str(root / "cache")
    return bindir, work, env, wheel


def test_wheel_holds_package_data_and_the_plugin(wheel_env):
    *_, wheel = wheel_env
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("aimcbench/configs/sweep.yaml", "aimcbench/configs/hardware/pcm.yaml",
                     "aimcbench/configs/model/vgg_block.yaml", "aimcbench/configs/dataset/synthetic.yaml",
                     "aimcbench/studies/s000/manifest.yaml", "aimcbench/studies/s000/conf/experiment/s000_fig6.yaml",
                     "aimcbench/data/_sample/mnist_sample.npz", "aimcbench/data/_sample/astronaut.png",
                     "aimcbench/py.typed",  # PEP 561 marker: type checkers use the package's annotations
                     "hydra_plugins/aimcbench_studies/studies_searchpath.py"):
        assert required in names, f"{required} missing from {wheel.name}"
    # hydra_plugins is a namespace shared with other Hydra plugins: an __init__.py there would hide them.
    assert "hydra_plugins/__init__.py" not in names
    # Every YAML and every module of the tree is in the wheel.
    tree = {p.relative_to(REPO).as_posix() for pkg in ("aimcbench", "hydra_plugins")
            for p in (REPO / pkg).rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts}
    assert sorted(tree - names) == []


def test_installed_wheel_runs_from_an_empty_directory(wheel_env):
    bindir, work, env, _ = wheel_env
    for script in SCRIPTS:
        assert (bindir / script).is_file(), f"console script {script} not installed"

    code = ("import aimcbench, hydra_plugins.aimcbench_studies as p\n"
            "from aimcbench.sim import load_hardware\n"
            "from aimcbench.data import default_image_path\n"
            "load_hardware('pcm')\n"
            "print(aimcbench.__file__); print(p.__file__); print(default_image_path())")
    probe = _run([bindir / "python", "-c", code], work, env)
    assert probe.returncode == 0, probe.stderr[-3000:]
    venv = bindir.parent.resolve()
    for line in probe.stdout.split():
        assert Path(line).resolve().is_relative_to(venv), f"{line} is not the installed wheel's (venv {venv})"

    def command(name: str) -> list:
        """``aimc-<name>`` where the CLI has its own entry point, else ``aimc <name>``."""
        has_own = _run([bindir / "python", "-c", f"import aimcbench.cli as c; print(hasattr(c, '{name}_main'))"],
                       work, env)
        return [bindir / f"aimc-{name}"] if has_own.stdout.strip() == "True" else [bindir / "aimc", name]

    tiles = _run([*command("tiles"), "model=vgg_block", "hardware=rram"], work, env)
    assert tiles.returncode == 0, tiles.stderr[-3000:]
    assert re.search(r"total arrays:?\s+78\b", tiles.stdout), tiles.stdout[-2000:]

    run_dir = work / "run"
    sweep = _run([*command("sweep"), "dataset=synthetic", "train=quick", "mc.chips=2", "eval.n=32",
                  "eval.batch_size=32", "sweep.values=[8]", "hardware=pcm", f"hydra.run.dir={run_dir}"], work, env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert (run_dir / "chips.parquet").is_file()

    # The studies' presets resolve through the search-path plugin of the installed wheel.
    preset = _run([*command("sweep"), "experiment=s000_fig6", "--cfg", "job"], work, env)
    assert preset.returncode == 0, preset.stderr[-3000:]
    assert "hardware.adc.quantizer=mulaw" in preset.stdout and "chips: 40" in preset.stdout, preset.stdout[-2000:]

    assert sorted(p.name for p in work.iterdir()) == ["run"], "a command wrote outside hydra.run.dir"
