"""Shared pieces of the ``aimc`` commands: where the configs live, error reporting (one line, exit 2).

The schema and the validation are :mod:`aimcbench.config`; every problem is a :class:`UsageError` whose ``str()``
is one line ``<dotted key>: <what is allowed>``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf


def config_dir() -> Path:
    """The packaged configs directory (``aimcbench/configs``)."""
    from aimcbench.configs import CONFIG_DIR

    return CONFIG_DIR


# Most file systems allow 255 bytes per path component; stay well below so a run dir plus "points/..." and
# a parent "outputs/sweep" keep whole paths short too.
DIRNAME_MAX_BYTES = 200
# Characters kept from the last component of a path value (the rest become "_").
_PATH_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


def _short_value(value: str) -> str:
    """A value with "/" (a file path: model.checkpoint=/a/b/c.pt) as its last component plus a hash of the
    whole value ('c.pt~1a2b3c4d'), so the name stays one folder and two paths with one file name differ."""
    if "/" not in value:
        return value
    import hashlib

    last = _PATH_CHARS.sub("_", value.rstrip("/").rsplit("/", 1)[-1])[:40]
    return f"{last}~{hashlib.sha256(value.encode('utf-8')).hexdigest()[:8]}"


def _excluded(key: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(key, str(p)) for p in (patterns or ()))


def _dirname(overrides: Any, exclude_keys: Any = None) -> str:
    """Run-directory name for a job: its overrides (``hydra.overrides.task``) like Hydra's override_dirname
    (``key=value`` sorted, joined by ","), without the run-only keys ``exclude_keys``
    (``hydra.job.config.override_dirname.exclude_keys``; shell patterns: ``report.*``) and with file paths as a
    short hash (:func:`_short_value`); 'default' when nothing is left. A string is taken as an already joined
    override_dirname (the form of earlier configs).

    A name over DIRNAME_MAX_BYTES (a long override list fails with "File name too long") becomes a readable
    prefix plus a hash of the full override string: the same command always gives the same directory, so a
    rerun still resumes; the full overrides stay in the run's .hydra/overrides.yaml and config.yaml."""
    import hashlib

    if isinstance(overrides, str):
        name = overrides
    else:
        lines = []
        for line in overrides or ():
            key, eq, value = str(line).partition("=")
            if _excluded(key.lstrip("+~"), exclude_keys):
                continue
            lines.append(f"{key}{eq}{_short_value(value)}")
        name = ",".join(sorted(lines))
    name = name or "default"
    raw = name.encode("utf-8")
    if len(raw) <= DIRNAME_MAX_BYTES and "/" not in name:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    prefix = raw[:DIRNAME_MAX_BYTES - len(digest) - 1].decode("utf-8", "ignore").replace("/", "_").rstrip(",")
    return f"{prefix}~{digest}"


# Registered at import so Hydra (and launchers that import the task module in a worker) can resolve
# ``${aimc_dirname:...}`` in hydra.run.dir; deterministic run dirs are what make reruns resume.
if not OmegaConf.has_resolver("aimc_dirname"):
    OmegaConf.register_new_resolver("aimc_dirname", _dirname)


# The schema and its validation live in aimcbench.config; these names stay importable from here.
from aimcbench.config import (UsageError, check_config, check_sweep_config, parse_fixed,  # noqa: E402,F401
                              point_configs, set_dotted)
from aimcbench.config.store import register as _register_schema  # noqa: E402

# Registered at import too: launchers that import a command's task module in a worker compose there.
_register_schema()


def fail(message: str, status: int = 2) -> None:
    """Print ``aimc: error: <message>`` (one line) to stderr and exit with ``status``."""
    print(f"aimc: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(status)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input problem (exit 2, one line) rather than a bug."""
    errs: list[type[BaseException]] = [UsageError]
    for mod, name in (("aimcbench.sim", "ConfigError"), ("aimcbench.models", "ModelError"),
                      ("aimcbench.data", "DataError"), ("aimcbench.tasks", "TaskError"),
                      ("aimcbench.train", "CheckpointError"), ("aimcbench.runner", "RunDirError"),
                      ("aimcbench.report", "ReportError")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def exits_on_user_error(fn: Callable) -> Callable:
    """Decorate a Hydra task function: user errors print one line and exit 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        errors = user_errors()
        try:
            return fn(*args, **kwargs)
        except errors as err:
            fail(str(err))

    return wrapper


def plain(cfg: Any) -> dict:
    """A resolved plain-dict copy of a DictConfig without Hydra's own section (left unresolved: before a job
    starts, its run-time values are not set yet)."""
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
            for k in cfg if k != "hydra"}


def on_model_inputs(data: dict, label: str, fn: Callable[[tuple, bool], Any], hint: str = "") -> tuple[Any, str]:
    """``fn(shape, own)`` on the data set's input shape (``own`` False); when the model cannot take those inputs
    (a RuntimeError) but names its own ``model.input_shape``, on that (``own`` True), so that e.g. ``aimc tiles
    model=vgg_block hardware=rram`` just works. Returns (result, where the shape came from: "" or a note). A model
    without its own shape is a UsageError naming ``dataset`` (``hint`` suggests one)."""
    shape = tuple(data["dataset"]["shape"])
    try:
        return fn(shape, False), ""
    except RuntimeError as err:
        own = data["model"].get("input_shape")
        if not own:
            raise UsageError("dataset", f"model {label} does not take {'x'.join(map(str, shape))} inputs; pick a "
                                        f"data set of its input shape{hint} ({str(err).splitlines()[0][:80]})") from None
        return fn(tuple(own), True), f"inputs {'x'.join(map(str, own))} from model.input_shape"
