"""What the manifests' runs amount to at a scale, without running them: ``reproduce_paper.py --plan``.

For every entry and run line, the configs Hydra would compose (a ``-m`` line expanded into its jobs, each job into
its sweep points) give the model, the data set, the chips and test images per point, and so the chip-images the
entry evaluates. The README's paper-scale table (expected run times) is computed from this and the measured
per-chip-image costs, so it cannot drift from the manifests.
"""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path


def expand_multirun(args: list[str]) -> list[list[str]]:
    """The overrides of every job of a ``-m`` line (Hydra's own parser: ``a=1,2 b=x,y`` -> 4 jobs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    choices = []
    for o in parser.parse_overrides(args):
        key = o.get_key_element()
        if o.is_sweep_override():
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([f"{key}={o.get_value_element_as_str()}"])
    return [list(c) for c in itertools.product(*choices)]


def compose(command: str, overrides: list[str]) -> dict:
    """The plain config ``aimc <command> <overrides>`` would run (package configs and the studies' presets)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from aimcbench.config.store import register
    from aimcbench.configs import CONFIG_DIR

    register()

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose(config_name=command, overrides=[o for o in overrides
                                                                    if not o.startswith("hydra.") or
                                                                    o.startswith("hydra.searchpath=")])
    return OmegaConf.to_container(cfg, resolve=False)


def _training(train: dict) -> str:
    """The training a job asks for, in words: the digital steps, and the aware epochs when there are any."""
    aware = train.get("aware") or {}
    text = f"{train.get('steps')} steps x {train.get('batch_size')}"
    if aware.get("level"):
        text += f", level {aware['level']} aware {aware.get('epochs')} epochs"
    return text


def run_plan(args: list[str]) -> list[dict]:
    """One row per job of one ``aimc`` argument list (as reproduce.command_line builds it): model, data, points,
    chips, test images per chip, chip-images. Commands other than sweep get a row with what they are."""
    from aimcbench.config.points import point_configs

    command, rest = args[0], []
    it = iter(args[1:])
    for a in it:   # the flags of `aimc`: -m, and --config-dir DIR (a search path, as Hydra adds it)
        if a in ("-m", "--multirun"):
            continue
        if a in ("--config-dir", "-cd"):
            rest.append(f"hydra.searchpath=[file://{Path(next(it)).resolve()}]")
        elif a.startswith("--config-dir="):
            rest.append(f"hydra.searchpath=[file://{Path(a.split('=', 1)[1]).resolve()}]")
        else:
            rest.append(a)
    if command != "sweep":
        return [{"command": command, "args": shlex.join(rest)}]
    rows = []
    for job in expand_multirun(rest):
        cfg = compose("sweep", job)
        points = point_configs(cfg)
        chips, n = int(cfg["mc"]["chips"]), cfg["eval"].get("n")
        ds = cfg["dataset"]
        if ds.get("name") == "images" and not ds.get("coco_images"):   # image files: as many as listed (default 1)
            n = len(ds.get("paths") or [None])
        rows.append({"command": command, "job": " ".join(j for j in job if not j.startswith("hydra.")),
                     "model": cfg["model"].get("name") or cfg["model"].get("_target_"),
                     "dataset": cfg["dataset"].get("name") or cfg["dataset"].get("_target_"),
                     "hardware": cfg["hardware"].get("name"), "training": _training(cfg.get("train") or {}),
                     "points": len(points), "chips": chips, "test_images": n,
                     "chip_images": len(points) * chips * int(n or 0)})
    return rows


def plan(entries: list[dict], scale: str, out_root: Path, extra: list[str], command_line) -> list[dict]:
    """Rows of every selected entry's runs at ``scale`` (see :func:`run_plan`); an entry that cannot compose
    gets a row naming the error, so one bad preset does not hide the rest. ``command_line``: reproduce's own
    (passed in, so that this module does not import reproduce back)."""
    rows = []
    for entry in entries:
        overrides = list(entry.get(scale) or []) + list(extra)
        for i, run in enumerate(entry["runs"]):
            args = command_line(run, i, out_root / entry["id"], overrides)
            try:
                for row in run_plan(args):
                    rows.append({"id": entry["id"], "run": i, **row})
            except Exception as err:  # noqa: BLE001 - reported in the row
                rows.append({"id": entry["id"], "run": i, "command": args[0],
                             "error": " ".join(str(err).split())[:160]})
    return rows


def print_plan(rows: list[dict]) -> None:
    """A table per entry: jobs, model, data, points x chips x test images, and the totals."""
    total = 0
    for r in rows:
        if "error" in r:
            print(f"{r['id']:<20} run{r['run']} {r['command']}: cannot compose: {r['error']}")
        elif r["command"] != "sweep":
            print(f"{r['id']:<20} run{r['run']} {r['command']} {r['args'][:80]}")
        else:
            total += r["chip_images"]
            print(f"{r['id']:<20} run{r['run']} {r['model']!s:<16} {r['dataset']!s:<16} {r['hardware']!s:<12} "
                  f"{r['points']:>3} pts x {r['chips']:>3} chips x {r['test_images']!s:>6} img = "
                  f"{r['chip_images']:>12,} chip-images  ({r['training']})  [{r['job'][:60]}]")
    print(f"total: {total:,} chip-images in {sum(r.get('command') == 'sweep' for r in rows)} sweep jobs")
