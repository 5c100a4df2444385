"""``aimc``: the command-line entry point.

``aimc <command> [hydra args]`` validates the arguments, then rewrites ``sys.argv`` and calls the
command's ``@hydra.main`` function, so everything Hydra offers (overrides, ``-m``, ``--cfg job``,
``-cd``, launchers) works unchanged. Validation happens first because Hydra reports bad overrides
with a traceback-like message and exit status 1; here a typo'd key, a wrong type or an out-of-range
value (also inside a ``-m`` sweep or ``sweep.values``) ends with exit status 2 and one line
``aimc: error: <key>: <what is allowed>`` before any work starts.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

COMMANDS = {
    "train": ("train", "train a model digitally (or reuse the cached one) and print its test metrics"),
    "sweep": ("sweep", "Monte Carlo sweep: program many simulated chips per point, write tables and plots"),
    "report": ("report", "rebuild tables and plots from sweep directories; merge several sweeps"),
    "tiles": ("tiles", "print how each analog layer maps onto crossbar arrays, and the total array count"),
    "optimize": ("optimize", "study 003: choose each layer's conductance range and ADC full scale (convex program)"),
}

# Hydra flags that take a value, and flags that mean "no job will run" (help, info, completion).
VALUE_FLAGS = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
               "-cd", "--config-dir", "--experimental-rerun"}
NO_JOB_FLAGS = {"-h", "--help", "--hydra-help", "--version", "-i", "--info", "-sc", "--shell-completion",
                "--experimental-rerun"}
MULTIRUN_FLAGS = {"-m", "--multirun"}

USAGE = """usage: aimc <command> [key=value ...] [hydra flags]

Monte Carlo experiments for analog in-memory computing.

commands:
{commands}

Each command is a Hydra app: `aimc sweep --help` lists its config groups and keys,
`aimc sweep --cfg job` prints the composed config, `aimc sweep -m hardware=pcm,rram` runs one
sweep per choice. Examples:
  aimc sweep hardware=pcm sweep=adc_bits
  aimc sweep model=dae sweep=adc_bits_mulaw mc.chips=10 eval.n=1000
  aimc report outputs/sweep/*
  aimc tiles model=mlp3 hardware=rram
"""


def usage() -> str:
    width = max(map(len, COMMANDS))
    return USAGE.format(commands="\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()))


def split_args(args: Sequence[str]) -> tuple[list[str], dict[str, str], bool, bool]:
    """Split Hydra arguments into (overrides, flag values, multirun?, runs a job?)."""
    overrides: list[str] = []
    flags: dict[str, str] = {}
    multirun, job = False, True
    it = iter(args)
    for arg in it:
        name, eq, val = arg.partition("=")
        if arg in MULTIRUN_FLAGS:
            multirun = True
        elif arg in NO_JOB_FLAGS or (arg.startswith("--") and name in NO_JOB_FLAGS):
            job = False
            if arg in VALUE_FLAGS:
                next(it, None)
        elif arg in VALUE_FLAGS:
            flags[arg] = next(it, "")
        elif arg.startswith("-") and name in VALUE_FLAGS and eq:
            flags[name] = val
        elif arg in ("--resolve", "-r", "--run"):
            pass
        else:
            overrides.append(arg)
    return overrides, flags, multirun, job


def report_args(args: Sequence[str]) -> list[str]:
    """``aimc report DIR...``: bare directory arguments become the override ``dirs=[DIR,...]``."""
    out: list[str] = []
    dirs: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("-"):
            out.append(arg)
            if arg in VALUE_FLAGS:
                out.append(next(it, ""))
        elif "=" in arg:
            out.append(arg)
        else:
            dirs.append(arg)
    if dirs:
        quoted = ",".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
        out.append(f"dirs=[{quoted}]")
    return out


def _variants(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Override lists to validate: the first choice of every -m sweep, then each choice of each sweep.

    Not the full product (which can be huge): every value is checked once, with the other sweeps
    at their first choice. Hydra's own overrides (hydra.*, hydra/...) are left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from aimcbench.commands._common import UsageError

    parser = OverridesParser.create()
    choices: list[list[str]] = []
    for text in overrides:
        try:
            (ov,) = parser.parse_overrides([text])
        except OverrideParseException as err:
            raise UsageError(text.split("=", 1)[0], f"cannot parse override {text!r} ({err.message.splitlines()[0]})")
        if ov.is_hydra_override():
            continue
        key = ov.get_key_element()
        if ov.is_sweep_override():
            if not multirun:
                raise UsageError(ov.key_or_group, f"{text!r} is a sweep; add -m to run one job per value, "
                                 "or write a list as key=[a,b]")
            if not ov.is_discrete_sweep() or ov.is_choice_sweep() and "glob(" in text:
                continue
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([text])
    base = [c[0] for c in choices]
    out = [base]
    for i, c in enumerate(choices):
        out.extend(base[:i] + [v] + base[i + 1:] for v in c[1:])
    return out


def _group_options(cdir, group: str) -> list[str]:
    return sorted(p.stem for p in (cdir / group).glob("*.yaml")) if (cdir / group).is_dir() else []


def _composition_error(err: Exception, cdir, config_name: str, overrides: list[str]):
    """Turn a Hydra composition error into a one-line UsageError naming the key."""
    from hydra.errors import MissingConfigException

    from aimcbench.commands._common import UsageError

    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, name = str(err.missing_cfg_file).rpartition("/")
        if group:
            opts = err.options or _group_options(cdir, group)
            return UsageError(group, f"no option {name!r}; allowed: {', '.join(opts)}")
    text = " ".join(str(err).split())
    cause = err.__cause__
    full_key = getattr(cause, "full_key", None)
    if full_key and "not in struct" in str(cause):
        parent = full_key.rpartition(".")[0]
        return UsageError(full_key, f"unknown key{_allowed_keys(cdir, config_name, overrides, full_key, parent)}")
    if "Could not override '" in text:
        key = text.split("Could not override '", 1)[1].split("'", 1)[0]
        return UsageError(key, f"cannot be set ({' '.join(str(cause or err).split())[:200]})")
    return UsageError("config", text[:300])


def _allowed_keys(cdir, config_name: str, overrides: list[str], bad_key: str, parent: str) -> str:
    """'; allowed: a, b' for the keys under ``parent`` in the config composed without the bad override."""
    try:
        cfg = _compose(cdir, config_name, [o for o in overrides if not o.lstrip("+~").startswith(bad_key)])
    except Exception:  # noqa: BLE001 - best effort: the message is still useful without the list
        return ""
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, parent) if parent else cfg
    return f"; allowed: {', '.join(map(str, node.keys()))}" if hasattr(node, "keys") else ""



def _compose(cdir, config_name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cdir), version_base="1.3", job_name="aimc_validate"):
        return compose(config_name=config_name, overrides=overrides)


def validate(command: str, args: Sequence[str]) -> None:
    """Compose the command's config for every override variant and check it; UsageError on problems."""
    from pathlib import Path

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from aimcbench.commands import _common
    from aimcbench.commands._common import UsageError

    overrides, flags, multirun, job = split_args(args)
    if not job:
        return
    cdir = _common.config_dir()
    config_name = flags.get("-cn") or flags.get("--config-name") or command
    extra_dir = flags.get("-cd") or flags.get("--config-dir")
    if flags.get("-cp") or flags.get("--config-path"):
        cdir = Path(flags.get("-cp") or flags.get("--config-path")).resolve()
    for variant in _variants(overrides, multirun):
        if extra_dir:
            variant = variant + [f"hydra.searchpath=[file://{Path(extra_dir).resolve()}]"]
        try:
            cfg = _compose(cdir, config_name, variant)
            data = OmegaConf.to_container(cfg, resolve=True)
        except UsageError:
            raise
        except (OmegaConfBaseException, Exception) as err:  # noqa: BLE001 - Hydra raises several types
            if type(err).__module__.startswith(("hydra", "omegaconf")):
                raise _composition_error(err, cdir, config_name, variant) from None
            raise
        if command == "sweep":
            _common.check_sweep_config(data)
        elif command in ("train", "tiles"):
            _common.check_config(data)
        elif command == "optimize":
            from aimcbench.commands.optimize import check_optimize
            from aimcbench.sim import ConfigError, hardware_from_dict

            _common.check_config(data)
            try:
                check_optimize(data, hardware_from_dict(data["hardware"]))
            except ConfigError as err:
                raise UsageError(err.key, str(err).split(": ", 1)[-1]) from None
        elif command == "report":
            for d in data.get("dirs") or []:
                if not Path(d).is_dir():
                    raise UsageError("dirs", f"{d!r} is not a directory (give sweep run directories)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aimc`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from aimcbench import __version__

        print(f"aimc {__version__}")
        return 0
    command, rest = args[0], args[1:]
    from aimcbench.commands._common import UsageError, fail

    if command not in COMMANDS:
        fail(f"command: unknown {command!r}; allowed: {', '.join(COMMANDS)} (see aimc --help)")
    if command == "report":
        rest = report_args(rest)
    try:
        validate(command, rest)
    except UsageError as err:
        fail(str(err))
    module = importlib.import_module(f"aimcbench.commands.{COMMANDS[command][0]}")
    sys.argv = [f"aimc-{command}", *rest]
    module.main()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
