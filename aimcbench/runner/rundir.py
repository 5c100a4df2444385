"""A run directory owns its results: an exclusive lock while a sweep writes it, per-point manifests verified on
resume, and the fault-injection hook the tests use to kill a sweep at a chosen moment.

Lock: ``<run_dir>/.aimc.lock`` (filelock: an OS lock the kernel releases when the holder dies, so a killed sweep
never blocks the next one) and ``<run_dir>/.aimc.holder.json`` (pid, host, since, overrides of the holder; only
for the message a second sweep prints).

Manifest: ``points/point_XXX.json`` = {"hash", "parts", "files": {relative path: {"size", "sha256"}}}, written
atomically after every file of the point; a point is done when its manifest exists and every listed file matches.

Fault injection (tests): with AIMC_FAULT_AT=k the k-th event of the process (every os.replace, i.e. every atomic
file commit of the runner, the report and the cache, and every point boundary) does AIMC_FAULT_KIND: ``exit``
(default; os._exit(3), a killed job), ``enospc`` (the write fails as on a full disk) or ``sleep`` (holds the lock
AIMC_FAULT_SLEEP_S seconds, default 30, or until the file AIMC_FAULT_RELEASE exists). AIMC_FAULT_LOG=<file> appends every event ("k what") to that file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from .contract import RunDirBusyError, atomic_write_text

LOCK_NAME = ".aimc.lock"
HOLDER_NAME = ".aimc.holder.json"
_events = {"n": 0}


def fault_event(what: str) -> None:
    """Count one event; at the AIMC_FAULT_AT-th, inject the AIMC_FAULT_KIND fault (see module docstring)."""
    at = os.environ.get("AIMC_FAULT_AT")
    log = os.environ.get("AIMC_FAULT_LOG")
    if not at and not log:
        return
    _events["n"] += 1
    k = _events["n"]
    if log:
        with open(log, "a") as fh:
            fh.write(f"{k} {what}\n")
    if not at or k != int(at):
        return
    kind = os.environ.get("AIMC_FAULT_KIND", "exit")
    print(f"aimc: fault injected at event {k} ({kind}: {what})", file=sys.stderr, flush=True)
    if kind == "sleep":  # until AIMC_FAULT_RELEASE (a file path) exists, at most AIMC_FAULT_SLEEP_S seconds
        release, end = os.environ.get("AIMC_FAULT_RELEASE"), time.time() + float(os.environ.get("AIMC_FAULT_SLEEP_S", "30"))
        while time.time() < end and not (release and os.path.exists(release)):
            time.sleep(0.05)
    elif kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)
    else:
        sys.stdout.flush()
        os._exit(3)


def install_fault_hook() -> None:
    """With AIMC_FAULT_AT or AIMC_FAULT_LOG set, make every os.replace of this process a fault event (once)."""
    if not (os.environ.get("AIMC_FAULT_AT") or os.environ.get("AIMC_FAULT_LOG")) or hasattr(os.replace, "_aimc"):
        return
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.environ.get("AIMC_FAULT_KIND") == "enospc" and os.environ.get("AIMC_FAULT_AT") == str(
                _events["n"] + 1) and os.path.isfile(src):
            with open(src, "r+b") as fh:  # a full disk leaves a partial temporary file behind the failure
                fh.truncate(os.path.getsize(src) // 2)
        fault_event(os.fspath(dst))
        return real(src, dst, *args, **kwargs)

    replace._aimc = True  # type: ignore[attr-defined]
    os.replace = replace


class RunDirLock:
    """The exclusive lock of one run directory (context manager); see the module docstring."""

    def __init__(self, run_dir: Path, label: str = "", wait: bool = False, log: Callable[[str], None] = print):
        self.run_dir, self.label, self.wait, self.log = run_dir, label, wait, log
        self._lock = FileLock(str(run_dir / LOCK_NAME))

    def holder_text(self) -> str:
        """'pid N on host H since T (started with ...)' from the holder file, or a plain phrase."""
        try:
            h = json.loads((self.run_dir / HOLDER_NAME).read_text())
            return (f"pid {h['pid']} on host {h['host']} since {h['since']} "
                    f"(started with {h.get('overrides') or 'no overrides'})")
        except (OSError, ValueError, KeyError):
            return "another sweep"

    def __enter__(self) -> RunDirLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self.wait:
                raise RunDirBusyError(f"{self.run_dir}: in use by {self.holder_text()}; wait for it or set "
                                      "wait=true") from None
            self.log(f"aimc: {self.run_dir}: in use by {self.holder_text()}; waiting for it (wait=true)")
            self._lock.acquire()
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "overrides": self.label}
        try:
            atomic_write_text(self.run_dir / HOLDER_NAME, json.dumps(holder))
        except OSError:  # only a courtesy for the message of a second sweep: never a reason to fail
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        (self.run_dir / HOLDER_NAME).unlink(missing_ok=True)
        self._lock.release()


def clean_temp_files(run_dir: Path) -> None:
    """Remove temporary files a killed writer left (called while holding the lock: nobody else writes)."""
    for folder in (run_dir, run_dir / "points", run_dir / "images"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(run_dir: Path, i: int) -> Path:
    return run_dir / "points" / f"point_{i:03d}.json"


def write_manifest(run_dir: Path, i: int, digest: str, parts: dict, files: list[str], seconds: float) -> None:
    """Record a finished point: its hash (and parts), the seconds it took and the size and sha256 of every file
    it consists of."""
    listed = {rel: {"size": (run_dir / rel).stat().st_size, "sha256": sha256_file(run_dir / rel)} for rel in files}
    atomic_write_text(manifest_path(run_dir, i), json.dumps(
        {"hash": digest, "parts": parts, "seconds": round(seconds, 3), "files": listed}, indent=1, sort_keys=True))


def read_manifest(run_dir: Path, i: int) -> dict | None:
    """A point's manifest, or None when it is missing or unreadable (the point is then not done)."""
    try:
        out = json.loads(manifest_path(run_dir, i).read_text())
        return out if isinstance(out, dict) and isinstance(out.get("files"), dict) else None
    except (OSError, ValueError):
        return None


def damaged_file(run_dir: Path, manifest: dict) -> str | None:
    """The first listed file that is missing or differs from its recorded size/sha256 (with why), else None."""
    for rel, want in sorted(manifest["files"].items()):
        path = run_dir / rel
        if not path.is_file():
            return f"{path}: missing"
        if path.stat().st_size != want.get("size"):
            return f"{path}: {path.stat().st_size} bytes, expected {want.get('size')}"
        if sha256_file(path) != want.get("sha256"):
            return f"{path}: content differs from its manifest"
    return None


MISMATCH_WHY = {"weights": "different model weights (the trained model changed, e.g. the cache was deleted and the "
                           "model retrained, or another checkpoint)",
                "data": "different test data (e.g. full MNIST instead of the embedded sample, or other files)",
                "batch_size": "a different eval.batch_size",
                "config": "a different config (e.g. edited settings or defaults)",
                "sim": "another version of the simulator's random numbers (points of an older aimcbench)"}


def mismatch_reason(old_parts: dict | None, parts: dict) -> str:
    """Why stored points do not fit this run: the first part that differs."""
    if not isinstance(old_parts, dict):
        return "a different config or an older aimcbench"
    for key in ("sim", "config", "batch_size", "weights", "data"):  # a changed config explains the rest
        if old_parts.get(key) != parts.get(key):
            detail = f" ({old_parts.get(key)}, now {parts.get(key)})" if key == "batch_size" else ""
            return MISMATCH_WHY[key] + detail
    return MISMATCH_WHY["config"]


def ranges(indices: list[int]) -> str:
    """'0-2, 5' for [0, 1, 2, 5]."""
    out: list[str] = []
    for i in sorted(indices):
        if out and int(out[-1].split("-")[-1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ", ".join(out)
