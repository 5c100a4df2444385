"""Kill a sweep at seeded random moments (AIMC_FAULT_AT: every file commit and point boundary, the final report
included) and resume: the tables must equal an uninterrupted run's bit for bit. A full disk (AIMC_FAULT_KIND=enospc)
must end in one line naming the file, exit 2, no "complete" status and no partial file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_metrics, needs_sim

pytestmark = [needs_sim, needs_metrics]
# A tiny synthetic sweep (2 chips, 3 points, 32 images) sharing the session's trained-model cache.
# threads=1: one thread in the forked children (an OpenMP pool is not carried over a fork).
ARGS = ["dataset=synthetic", "train=quick", "mc.chips=2", "eval.n=32", "eval.batch_size=32", "hardware=pcm",
        "sweep=read_noise", "sweep.values=[1,2,4]", "threads=1"]
TABLES = ("chips.parquet", "digital.csv", "percentiles.csv")
REPORT_FILES = ("percentiles.csv", "summary.md", ".png")


def sweep(run_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """``aimc sweep ARGS hydra.run.dir=run_dir`` with extra environment variables, in a forked copy of this
    process (the same code path as ``python -m aimcbench sweep``, less the seconds of importing torch, Hydra and
    pandas again; os._exit and exit statuses behave as in a separate process). Returns its status and output."""
    out = run_dir.parent / f".{run_dir.name}.out"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            fh = open(out, "w")  # noqa: SIM115 -- the child's stdout/stderr until os._exit
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            sys.stdout = sys.stderr = fh
            os.environ.update({"AIMC_NO_DOWNLOAD": "1", **env})
            from hydra.core.global_hydra import GlobalHydra

            from aimcbench.cli import main

            GlobalHydra.instance().clear()
            code = main(["sweep", *ARGS, f"hydra.run.dir={run_dir}"]) or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 -- report anything and exit non-zero
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    text = out.read_text()
    out.unlink()
    return subprocess.CompletedProcess([], os.waitstatus_to_exitcode(status), text, text)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (after one that trains the model) and the list of its events ("k what")."""
    base = tmp_path_factory.mktemp("faults")
    # Imported once here, so the forked runs do not each import them again.
    import matplotlib.pyplot  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import aimcbench.cli
    import aimcbench.commands.sweep
    import aimcbench.report
    import aimcbench.report.plots  # noqa: F401

    warm = sweep(base / "warm")  # trains the shared model, so that every later run has the same events
    assert warm.returncode == 0, warm.stderr
    log = base / "events.log"
    done = sweep(base / "ref", AIMC_FAULT_LOG=str(log))
    assert done.returncode == 0, done.stderr
    events = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    return base / "ref", events


def leftovers(run_dir: Path) -> list[Path]:
    """Temporary or partial files anywhere in the run directory."""
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def check_kill_and_resume(tmp_path: Path, ref: Path, k: int, what: str) -> None:
    run = tmp_path / f"kill{k}"
    killed = sweep(run, AIMC_FAULT_AT=str(k))
    assert killed.returncode == 3, (k, what, killed.stderr[-2000:])
    meta = run / "meta.json"
    assert not meta.exists() or json.loads(meta.read_text())["status"] == "running", (k, what)
    resumed = sweep(run)
    assert resumed.returncode == 0, (k, what, resumed.stderr[-2000:])
    assert json.loads(meta.read_text())["status"] == "complete"
    for name in TABLES:
        assert (run / name).read_bytes() == (ref / name).read_bytes(), (k, what, name)
    assert leftovers(run) == [] and not (run / ".aimc.holder.json").exists()


def kill_moments(events: list[str], n: int, seed: int = 13) -> list[int]:
    """``n`` seeded random events (1-based), at least one of them inside the final report."""
    rng = random.Random(seed)
    report = [i + 1 for i, e in enumerate(events) if e.endswith(REPORT_FILES) and "points" not in e]
    assert report, events
    picks = {rng.choice(report)}
    while len(picks) < min(n, len(events)):
        picks.add(rng.randint(1, len(events)))
    return sorted(picks)


def test_the_event_log_covers_points_and_the_report(reference):
    _, events = reference
    assert any(e == "point 2 done" for e in events) and any(e.endswith("percentiles.csv") for e in events)
    assert any(e.endswith(".png") for e in events) and events[-1].endswith("meta.json")


def test_five_kills_resume_bitwise(reference, tmp_path):
    ref, events = reference
    for k in kill_moments(events, 5):
        check_kill_and_resume(tmp_path, ref, k, events[k - 1])


@pytest.mark.slow
def test_twenty_kills_resume_bitwise(reference, tmp_path):
    ref, events = reference
    for k in kill_moments(events, 20, seed=2026):
        check_kill_and_resume(tmp_path, ref, k, events[k - 1])


@pytest.mark.parametrize("target", ["config.yaml", "points/digital_001.csv", "percentiles.csv"])
def test_disk_full_is_one_line_and_leaves_nothing_half_written(reference, tmp_path, target):
    ref, events = reference
    k = next(i + 1 for i, e in enumerate(events) if e.endswith("/" + target))
    run = tmp_path / "full"
    res = sweep(run, AIMC_FAULT_AT=str(k), AIMC_FAULT_KIND="enospc")
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("aimc: error:")]
    want = (f"aimc: error: {run / target}: the disk is full; free space (or choose another hydra.run.dir) and "
            "rerun: the sweep resumes")
    assert errors == [want], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not (run / target).exists() and leftovers(run) == []
    meta = run / "meta.json"
    if target == "config.yaml":
        assert not meta.exists()  # nothing of the run written yet: nothing half-written
    else:
        saved = json.loads(meta.read_text())
        assert saved["status"] == "failed" and "No space left on device" in saved["error"]
    if target == "points/digital_001.csv":  # space freed: the sweep resumes to the same tables
        resumed = sweep(run)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        for name in TABLES:
            assert (run / name).read_bytes() == (ref / name).read_bytes(), name
