#!/usr/bin/env python3
"""Rerun the studies' figures and tables from the manifests in configs/paper/*.yaml (issue 8).

    python scripts/reproduce_paper.py [--scale quick|paper] [--only ID[,ID]] [--list]
                                      [--manifest-dir DIR] [--out DIR] [--set KEY=VALUE ...]

Every manifest file is a YAML list of entries (see the README): id, study, figure, title, runs (``aimc``
command lines), claim (the study's own sentence, quoted), departures (where our preset departs from the study:
a bound, a grid, a stand-in), quick / paper (overrides for sweep runs at that scale) and check
("module:function", returning :func:`aimcbench.studies.verdict.result`'s dict). Files are read in name order,
entries in list order. Run i of entry X gets ``hydra.run.dir=<out>/X/run<i>`` (``hydra.sweep.dir`` for
``-m`` runs), so a rerun resumes: the sweep runner skips finished points. A run line may name
``{out}`` (the entry's folder) and ``{runN}`` (run N's folder), e.g. for ``report {run0} {run1} out={out}``.

A failing run is recorded ("failed: <last line of its log>"), the entry's later runs are skipped, its check
still looks at what exists, and the script goes on. At the end (and after every entry) it writes
``<out>/index.md`` and ``<out>/index.json``; rows of entries not run this time (``--only``) are kept from
the previous index. The exit status is 0 unless the command line or a manifest is malformed (2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

# The studies live beside this module: studies/<id>/manifest*.yaml. Runs start in the current directory, with the
# package that holds this module first on PYTHONPATH, so a source checkout runs its own code.
STUDIES = Path(__file__).resolve().parent
CODE_ROOT = STUDIES.parents[1]
REQUIRED = ("id", "study", "figure", "title", "runs", "claim", "check")
OPTIONAL = ("quick", "paper", "departures")
SCALED_COMMANDS = ("sweep", "optimize")   # commands that take the quick/paper overrides in full
# Top-level keys of `aimc train`'s config (configs/train.yaml): a scale override reaches a train run only
# when it sets one of these (e.g. train.steps=500 must match the sweep's own training, mc.chips must not).
TRAIN_KEYS = ("model", "dataset", "train", "device", "cache_dir")


class ManifestError(ValueError):
    """A malformed manifest; ``str()`` is one line naming the file and key."""


def manifest_paths(manifest_dir: Path | None = None) -> list[Path]:
    """``*.yaml`` in ``manifest_dir``; by default every study's ``studies/<id>/manifest*.yaml`` (sorted by path)."""
    if manifest_dir is not None:
        return sorted(Path(manifest_dir).glob("*.yaml"))
    return sorted(STUDIES.glob("s[0-9]*/manifest*.yaml"))


def load_manifests(manifest_dir: Path | None = None) -> list[dict]:
    """Every entry of every manifest (see :func:`manifest_paths`; path order, then list order), validated."""
    entries: list[dict] = []
    seen: dict[str, str] = {}
    for path in manifest_paths(manifest_dir):
        try:
            data = yaml.safe_load(path.read_text()) or []
        except yaml.YAMLError as err:
            raise ManifestError(f"{path}: not valid YAML ({' '.join(str(err).split())[:150]})") from None
        if not isinstance(data, list):
            raise ManifestError(f"{path}: must be a YAML list of entries (id, study, figure, title, runs, check)")
        for k, entry in enumerate(data):
            where = f"{path.name}[{k}]"
            if not isinstance(entry, dict):
                raise ManifestError(f"{where}: an entry must be a mapping with keys {', '.join(REQUIRED)}")
            for key in REQUIRED:
                if key not in entry:
                    raise ManifestError(f"{where}.{key}: missing (required: {', '.join(REQUIRED)})")
            unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
            if unknown:
                raise ManifestError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(REQUIRED + OPTIONAL)}")
            eid = str(entry["id"])
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", eid):
                raise ManifestError(f"{where}.id: {eid!r} must be letters, digits, '_', '.', '-' (a folder name)")
            if eid in seen:
                raise ManifestError(f"{where}.id: {eid!r} already used in {seen[eid]}")
            seen[eid] = path.name
            runs = entry["runs"]
            if not isinstance(runs, list) or not runs or not all(isinstance(r, str) and r.split() for r in runs):
                raise ManifestError(f"{where}.runs: must be a non-empty list of aimc command lines (strings)")
            for scale in ("quick", "paper"):
                vals = entry.get(scale) or []
                if not isinstance(vals, list) or not all(isinstance(v, str) and "=" in v for v in vals):
                    raise ManifestError(f"{where}.{scale}: must be a list of KEY=VALUE overrides")
            if not isinstance(entry["claim"], str) or not entry["claim"].strip():
                raise ManifestError(f"{where}.claim: must be the study's sentence(s), quoted, as a string")
            deps = entry.get("departures") or []
            if not isinstance(deps, list) or not all(isinstance(d, str) and d.strip() for d in deps):
                raise ManifestError(f"{where}.departures: must be a list of sentences (where the preset departs)")
            if not isinstance(entry["check"], str) or ":" not in entry["check"]:
                raise ManifestError(f"{where}.check: must be 'module:function'")
            entries.append({**entry, "id": eid, "study": str(entry["study"]), "file": f"{path.parent.name}/{path.name}"})
    return entries


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def command_line(run: str, index: int, entry_dir: Path, scale_overrides: list[str]) -> list[str]:
    """The ``aimc`` arguments of one run line: placeholders filled, scale and run-dir overrides appended."""
    text = run.replace("{out}", str(entry_dir))
    text = re.sub(r"\{run(\d+)\}", lambda m: str(entry_dir / f"run{m.group(1)}"), text)
    args = shlex.split(text)
    command = args[0]
    multirun = "-m" in args or "--multirun" in args
    if multirun:  # Hydra's parser takes the flag only before the overrides: move it right after the command
        args = [command, "-m", *(a for a in args[1:] if a not in ("-m", "--multirun"))]
    if command in SCALED_COMMANDS:
        args += scale_overrides
    elif command == "train":
        args += [o for o in scale_overrides if _override_key(o).split(".")[0] in TRAIN_KEYS]
    if command != "report":  # `aimc report` writes where its out= says; Hydra's own dir stays "."
        args.append(f"hydra.{'sweep' if multirun else 'run'}.dir={entry_dir / f'run{index}'}")
    return args


def _last_line(text: str) -> str:
    """The last non-empty line of a log (what a failing aimc command says), shortened to one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    # Hydra ends a failed job with a hint line; the exception's own line (SomeError: ...) says more
    errors = [ln for ln in lines if re.match(r"^([\w.]*(Error|Exception)\b|aimc[\w-]*: error:)", ln)]
    return ((errors or lines)[-1] if lines else "no output")[:200]


def run_entry(entry: dict, out_root: Path, scale: str, extra: list[str], timeout_s: float | None,
              check_only: bool = False) -> dict:
    """Run one entry's command lines (none with ``check_only``), then its check; the index row (never raises)."""
    entry_dir = out_root / entry["id"]
    entry_dir.mkdir(parents=True, exist_ok=True)
    overrides = list(entry.get(scale) or []) + list(extra)
    runs, status, t_entry = [], "ok", time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(CODE_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for i, run in enumerate([] if check_only else entry["runs"]):
        args = command_line(run, i, entry_dir, overrides)
        log_path = entry_dir / f"run{i}.log"
        print(f"  $ aimc {shlex.join(args)}", flush=True)
        t0 = time.perf_counter()
        try:
            with open(log_path, "w") as log:
                proc = subprocess.run([sys.executable, "-m", "aimcbench", *args], stdout=log,
                                      stderr=subprocess.STDOUT, env=env, timeout=timeout_s)
            rc, why = proc.returncode, _last_line(log_path.read_text(errors="replace"))
        except subprocess.TimeoutExpired:
            rc, why = -1, f"timed out after {timeout_s:g} s"
        seconds = round(time.perf_counter() - t0, 1)
        runs.append({"args": args, "seconds": seconds, "returncode": rc, "log": str(log_path)})
        print(f"    {seconds:.1f} s, exit {rc}", flush=True)
        if rc != 0:
            status = f"failed: run{i}: {why}"
            break
    run_dirs = [entry_dir / f"run{i}" for i in range(len(entry["runs"]))]
    result = call_check(entry["check"], run_dirs, entry_dir)
    departures = list(entry.get("departures") or []) + data_departures(run_dirs)
    return {"id": entry["id"], "file": entry["file"], "study": entry["study"], "figure": str(entry["figure"]),
            "title": str(entry["title"]), "claim": " ".join(str(entry["claim"]).split()),
            "departures": departures, "scale": scale, "status": status,
            "seconds": round(time.perf_counter() - t_entry, 1), "runs": runs, **result}


def data_departures(run_dirs: list[Path]) -> list[str]:
    """A departure for every run (or job) that evaluated on the embedded MNIST sample or on synthetic data:
    read from the runs' own meta.json, so the index says what data the numbers really come from."""
    seen: dict[str, str] = {}
    for run_dir in run_dirs:
        for meta_path in sorted([run_dir / "meta.json", *run_dir.glob("*/meta.json")]):
            try:
                data = json.loads(meta_path.read_text()).get("data") or {}
            except (OSError, ValueError):
                continue
            source, name = data.get("source"), data.get("name", "?")
            if source == "sample":
                seen[name] = f"{name}: the embedded 6,000/2,000-image sample, not the full data set"
            elif source == "synthetic":
                seen[name] = f"{name}: synthetic data (the study's data set is not on this machine)"
    return list(seen.values())


def call_check(spec: str, run_dirs: list[Path], out_dir: Path) -> dict:
    """Call ``module:function(run_dirs, out_dir)``; a raising check becomes "not judged" with the error."""
    from aimcbench.studies.verdict import NOT_JUDGED, VERDICTS

    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
        res = dict(fn(run_dirs, out_dir) or {})
        verdict = res.get("verdict")
        if verdict not in VERDICTS:  # a check of the old kind: holds True / False / None
            verdict = {True: "holds", False: "does not hold"}.get(res.get("holds"), NOT_JUDGED)
        plot = res.get("plot")
        keep = {k: res[k] for k in ("value", "lo", "hi", "n_chips", "statistic", "study_value", "diff") if k in res}
        return {"ours": str(res.get("ours", "")), "verdict": verdict, "holds": res.get("holds"),
                "plot": str(plot) if plot else None, **keep}
    except Exception as err:  # noqa: BLE001 - one broken check must not stop the others
        return {"ours": f"check error: {type(err).__name__}: {' '.join(str(err).split())[:160]}",
                "verdict": NOT_JUDGED, "holds": None, "plot": None}


def _verdict(row: dict) -> str:
    return row.get("verdict") or {True: "holds", False: "does not hold"}.get(row.get("holds"), "not judged")


def _num(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return f"{x:.4g}" if x == x else ""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_index(rows: list[dict], out_root: Path) -> None:
    """results/paper/index.md (one row per entry) and index.json (the rows as data)."""
    out_root.mkdir(parents=True, exist_ok=True)
    counts = {v: sum(_verdict(r) == v for r in rows) for v in ("holds", "does not hold", "inconclusive", "not judged")}
    lines = ["# Paper figures reproduced by aimcbench", "",
             "Written by `make reproduce-paper-figures` (scripts/reproduce_paper.py). *claim*: the study's own words. "
             "*ours*: the statistic the claim is about, with its 95 % interval over chips. *study* / *diff*: the "
             "study's number where it gives one, and ours minus it. *departures*: where our preset departs from the "
             "study. *verdict*: holds / does not hold when the interval lies on one side of the claim's bound over "
             "at least 40 chips, inconclusive when it straddles (or fewer chips), not judged when nothing could be "
             "judged.", "",
             "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
             "| study | figure | claim | ours | study | diff | departures | verdict | plot | status | time (s) | scale |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        plot = ""
        if r.get("plot"):
            p = Path(r["plot"])
            p = p if p.is_absolute() else Path.cwd() / p
            plot = f"[plot]({os.path.relpath(p, out_root)})" if p.exists() else f"(missing: {p.name})"
        claim = r.get("claim") or r.get("reports", "")
        quoted = claim if not claim or claim.lstrip()[:1] in ('"', "'", "\u201c") else f'"{claim}"'  # quote once
        ours = r.get("ours", "")
        if r.get("statistic") and r["statistic"] not in ours:
            ours = f"{r['statistic']}; {ours}"
        deps = "; ".join(r.get("departures") or []) or "none"
        lines.append("| " + " | ".join(_cell(c) for c in (
            r["study"], f'{r["figure"]}: {r.get("title", "")}', quoted, ours, _num(r.get("study_value")),
            _num(r.get("diff")), deps, _verdict(r), plot, r.get("status", ""), r.get("seconds", ""),
            r.get("scale", ""))) + " |")
    (out_root / "index.md").write_text("\n".join(lines) + "\n")
    (out_root / "index.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")


def _previous_rows(out_root: Path) -> dict[str, dict]:
    try:
        return {r["id"]: r for r in json.loads((out_root / "index.json").read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=("quick", "paper"), default="quick",
                    help="quick: the entries' reduced chips/test images; paper: the studies' settings")
    ap.add_argument("--only", default="", help="comma-separated entry ids to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the entries and exit")
    ap.add_argument("--plan", action="store_true",
                    help="print what the selected entries' sweeps evaluate at --scale (model, data, points x chips x "
                         "test images) without running them, and exit")
    ap.add_argument("--manifest-dir", type=Path, default=None, help="default: every aimcbench/studies/<id>/manifest*.yaml")
    ap.add_argument("--out", type=Path, default=Path("results") / "paper", help="default: results/paper")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="extra override for every sweep run, e.g. --set threads=1 (repeatable)")
    ap.add_argument("--check-only", action="store_true",
                    help="run no commands: redo the checks and the index from the outputs already there")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run before it counts as failed")
    args = ap.parse_args(argv)
    manifest_dir = args.manifest_dir
    try:
        entries = load_manifests(manifest_dir)
    except ManifestError as err:
        print(f"reproduce_paper: error: {err}", file=sys.stderr)
        return 2
    if args.list:
        for e in entries:
            print(f"{e['id']:<22} {e['study']:>4} {str(e['figure']):<12} {len(e['runs'])} run(s)  "
                  f"[{e['file']}] {e['title']}")
        return 0
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - {e["id"] for e in entries})
    if unknown:
        print(f"reproduce_paper: error: --only: unknown id {unknown[0]!r}; known: "
              f"{', '.join(e['id'] for e in entries)}", file=sys.stderr)
        return 2
    bad = [x for x in args.extra if "=" not in x]
    if bad:
        print(f"reproduce_paper: error: --set: {bad[0]!r} must be KEY=VALUE", file=sys.stderr)
        return 2
    out_root = args.out.resolve()
    if args.plan:
        from aimcbench.studies.plan import plan, print_plan

        print_plan(plan([e for e in entries if not only or e["id"] in only], args.scale, out_root, args.extra,
                        command_line))
        return 0
    out_root.mkdir(parents=True, exist_ok=True)
    previous = _previous_rows(out_root)
    selected = [e for e in entries if not only or e["id"] in only]
    done: dict[str, dict] = {}

    def save_index() -> None:
        """Merge this call's rows into the index on disk (another call may be writing other entries)."""
        from filelock import FileLock

        with FileLock(str(out_root / ".index.lock")):
            prev = {**previous, **_previous_rows(out_root)}
            rows = [done.get(e["id"]) or prev[e["id"]] for e in entries if e["id"] in done or e["id"] in prev]
            write_index(rows, out_root)

    t_all = time.perf_counter()
    print(f"reproduce_paper: {len(selected)} of {len(entries)} entries from {manifest_dir or STUDIES}, scale {args.scale}, "
          f"outputs in {out_root}", flush=True)
    for n, entry in enumerate(selected, 1):
        print(f"== [{n}/{len(selected)}] {entry['id']}: study {entry['study']} {entry['figure']}", flush=True)
        done[entry["id"]] = run_entry(entry, out_root, args.scale, args.extra, args.timeout, args.check_only)
        if args.check_only and entry["id"] in previous:   # keep the recorded status, timing and runs
            done[entry["id"]].update({k: previous[entry["id"]][k] for k in ("status", "seconds", "runs", "scale")
                                      if k in previous[entry["id"]]})
        save_index()
    save_index()
    print(f"\nsummary ({time.perf_counter() - t_all:.0f} s; index: {out_root / 'index.md'})")
    for r in done.values():
        print(f"  {r['id']:<22} {r['seconds']:>7.1f} s  {_verdict(r):<13} {r['status']}"
              f"  | {r['ours'][:90]}")
    failed = [r["id"] for r in done.values() if r["status"] != "ok"]
    if failed:
        print(f"  {len(failed)} entr{'y' if len(failed) == 1 else 'ies'} failed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
