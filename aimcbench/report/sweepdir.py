"""Reading sweep directories (the runner's output layout) and writing files atomically.

A sweep directory holds ``chips.parquet`` once the sweep is complete, and
``points/point_XXX.parquet`` for every finished point while it runs; reading the point
files when ``chips.parquet`` is absent makes an interrupted sweep reportable. The digital
baseline is ``digital.csv`` or, failing that, ``points/point_XXX_digital.csv`` files.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aimcbench.report.errors import ReportError
from aimcbench.report.tables import CHIP_COLUMNS, DIGITAL_COLUMNS, require_columns

CHIPS_FILE = "chips.parquet"
DIGITAL_FILE = "digital.csv"
POINTS_DIR = "points"
POINT_GLOB = "point_[0-9]*.parquet"
# per-point digital baselines: the runner writes digital_XXX.csv; point_XXX_digital.csv also read
POINT_DIGITAL_GLOBS = ("digital_[0-9]*.csv", "point_[0-9]*_digital.csv")
META_FILE = "meta.json"
CONFIG_FILE = "config.yaml"
IMAGES_DIR = "images"

# mkstemp creates 0600 files; results should get the usual permissions (0666 minus umask)
_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass
class Sweep:
    """Everything the report needs from one sweep directory."""

    path: Path
    chips: pd.DataFrame
    digital: pd.DataFrame | None
    meta: dict = field(default_factory=dict)
    config: dict | None = None
    source: str = CHIPS_FILE  # "chips.parquet" or "points/" (partial sweep)

    @property
    def axis(self) -> str:
        """Dotted config key of the sweep axis."""
        return str(self.meta.get("axis") or self.chips["axis"].iloc[0])

    @property
    def axis_log(self) -> bool:
        """Whether the axis is plotted logarithmically (meta.json ``axis_log``)."""
        return bool(self.meta.get("axis_log", False))

    @property
    def axis_title(self) -> str | None:
        """Human-readable axis name (meta.json ``axis_title``, from the sweep config's label)."""
        return self.meta.get("axis_title") or None

    @property
    def label(self) -> str:
        """The job label from meta.json ("" when the sweep had no job overrides)."""
        return str(self.meta.get("label") or "")

    @property
    def complete(self) -> bool:
        """True when meta.json says the sweep finished."""
        return self.meta.get("status") == "complete"


def is_sweep_dir(path: Path) -> bool:
    """A directory is a sweep directory when it holds chips.parquet or finished point files."""
    path = Path(path)
    if (path / CHIPS_FILE).is_file():
        from aimcbench.report.dataset import is_merged_file  # `aimc report`'s merged table is no sweep

        return not is_merged_file(path / CHIPS_FILE)
    points = path / POINTS_DIR
    return points.is_dir() and any(points.glob(POINT_GLOB))


def _job_sort_key(path: Path):
    # multirun job dirs are 0/, 1/, ..., 10/: sort numerically where the names are numbers
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def find_sweep_dirs(root: str | os.PathLike) -> list[Path]:
    """All sweep directories at or below ``root`` (a sweep dir or a multirun dir), in job order.

    Raises:
        ReportError: if ``root`` does not exist or is not a directory.
    """
    root = Path(root)
    if not root.exists():
        raise ReportError(f"{root}: no such directory")
    if not root.is_dir():
        raise ReportError(f"{root}: not a directory (expected a sweep or multirun directory)")
    if is_sweep_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        # never descend into hidden dirs (.hydra) or a sweep's own points/images folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        if here != root and is_sweep_dir(here):
            found.append(here)
            dirnames[:] = []
    return sorted(found, key=_job_sort_key)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types; report them as one line
        raise ReportError(f"{path}: cannot read parquet ({type(exc).__name__}: {exc})") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=True)
    except Exception as exc:
        raise ReportError(f"{path}: cannot read csv ({type(exc).__name__}: {exc})") from None


def _load_chips(path: Path) -> tuple[pd.DataFrame, str]:
    chips_file = path / CHIPS_FILE
    if chips_file.is_file():
        chips, source = _read_parquet(chips_file), CHIPS_FILE
        where = str(chips_file)
    else:
        files = sorted((path / POINTS_DIR).glob(POINT_GLOB))
        if not files:
            raise ReportError(
                f"{path}: no sweep results (expected {CHIPS_FILE} or {POINTS_DIR}/point_XXX.parquet)"
            )
        chips = pd.concat([_read_parquet(f) for f in files], ignore_index=True)
        source, where = POINTS_DIR + "/", str(path / POINTS_DIR)
    require_columns(chips, CHIP_COLUMNS, where)
    if chips.empty:
        raise ReportError(f"{where}: holds no rows")
    # axis_label is read back as str even when every label looks numeric
    chips["axis_label"] = chips["axis_label"].astype(str)
    return chips, source


def _load_digital(path: Path) -> pd.DataFrame | None:
    digital_file = path / DIGITAL_FILE
    if digital_file.is_file():
        digital, where = _read_csv(digital_file), str(digital_file)
    else:
        files = sorted(f for g in POINT_DIGITAL_GLOBS for f in (path / POINTS_DIR).glob(g))
        if not files:
            return None
        digital = pd.concat([_read_csv(f) for f in files], ignore_index=True)
        where = str(path / POINTS_DIR / "digital_XXX.csv")
    require_columns(digital, DIGITAL_COLUMNS, where)
    return digital


def _load_meta(path: Path) -> dict:
    meta_file = path / META_FILE
    if not meta_file.is_file():
        return {}
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{meta_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ReportError(f"{meta_file}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _load_config(path: Path) -> dict | None:
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        return None
    from omegaconf import OmegaConf  # local import: plain config reading, no Hydra

    try:
        # resolve=False: interpolations such as ${hydra:...} cannot be resolved outside a run
        return OmegaConf.to_container(OmegaConf.load(config_file), resolve=False)
    except Exception as exc:
        raise ReportError(f"{config_file}: cannot read YAML ({exc})") from None


def load_sweep(run_dir: str | os.PathLike) -> Sweep:
    """Load one sweep directory (complete or partial).

    Reads chips.parquet, or when absent the concatenation of points/point_XXX.parquet;
    digital.csv, or when absent points/digital_XXX.csv (or points/point_XXX_digital.csv);
    meta.json and config.yaml when present.

    Raises:
        ReportError: one line naming the path when the directory or its results are missing
            or malformed.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such directory")
    chips, source = _load_chips(path)
    return Sweep(
        path=path,
        chips=chips,
        digital=_load_digital(path),
        meta=_load_meta(path),
        config=_load_config(path),
        source=source,
    )


def _hydra_overrides(path: Path) -> list[str]:
    overrides = path / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        return []
    from omegaconf import OmegaConf

    try:
        return [str(o) for o in OmegaConf.to_container(OmegaConf.load(overrides)) or []]
    except Exception:
        return []


def _flatten(tree, prefix="") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: repr(tree) if isinstance(tree, (list, tuple)) else tree}


def _differing(items: list[dict], show=lambda key, value: f"{key}={value}", limit: int = 3) -> list[str]:
    """Per item, the keys whose values differ across items, rendered by ``show``."""
    keys = sorted({k for item in items for k in item})
    diff = [k for k in keys if len({str(item.get(k)) for item in items}) > 1]
    return [
        ", ".join(show(k, item[k]) for k in diff[:limit] if item.get(k) is not None)
        for item in items
    ]


def _config_labels(configs: list[dict | None]) -> list[str]:
    flat = [_flatten(c or {}) for c in configs]
    # a whole config group that changed (hardware=pcm -> rram) shows as its `name` key
    groups = {k.split(".")[0] for k in flat[0] if k.endswith(".name") and k.count(".") == 1}
    collapsed = []
    for item in flat:
        row = {}
        for key, value in item.items():
            top = key.split(".")[0]
            if top in groups:
                row[top] = item.get(f"{top}.name")
            else:
                row[key] = value
        collapsed.append(row)
    return _differing(collapsed)


def split_common(labels: list[str]) -> tuple[list[str], str]:
    """Drop the "key=value" words every label shares; return (short labels, shared words).

    Multirun job labels repeat every override ("hardware=pcm dataset=synthetic mc.chips=8");
    only the words that differ tell the jobs apart. Labels are left whole if shortening
    would make any of them empty or two of them equal.
    """
    words = [lab.split() for lab in labels]
    if len(labels) < 2 or not all(words):
        return labels, ""
    shared = [w for w in words[0] if all(w in other for other in words[1:])]
    short = [" ".join(w for w in ws if w not in shared) for ws in words]
    if not all(short) or len(set(short)) < len(short):
        return labels, ""
    return short, " ".join(shared)


def label_sweeps(sweeps: list[Sweep]) -> list[str]:
    """One distinct label per sweep.

    Order of preference: meta.json ``label``; the Hydra overrides that differ between jobs
    (.hydra/overrides.yaml); the config values that differ; the directory name. Words shared
    by all labels are dropped (see split_common); labels that still collide get the
    directory name appended.
    """
    labels = [s.label for s in sweeps]
    if len(sweeps) > 1 and (not all(labels) or len(set(labels)) < len(labels)):
        candidates = [
            # overrides keyed by their config key; show the override text itself
            _differing(
                [{o.split("=")[0]: o for o in _hydra_overrides(s.path)} for s in sweeps],
                show=lambda key, value: value,
            ),
            _config_labels([s.config for s in sweeps]),
        ]
        for candidate in candidates:
            if all(candidate) and len(set(candidate)) == len(candidate):
                labels = candidate
                break
    labels = [lab or s.path.name for lab, s in zip(labels, sweeps)]
    labels = split_common(labels)[0]
    seen: dict[str, int] = {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
    return [f"{lab} ({s.path.name})" if seen[lab] > 1 else lab for lab, s in zip(labels, sweeps)]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
