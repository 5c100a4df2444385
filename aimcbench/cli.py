"""The command line: one Hydra app per command.

``aimc-sweep``, ``aimc-train``, ``aimc-tiles``, ``aimc-report`` and ``aimc-optimize`` are plain Hydra apps (their
own console scripts); ``aimc <command> ARGS`` runs the same app with ARGS. Everything Hydra offers works as
usual: overrides, ``-m``, ``--cfg job``, ``--config-dir``, ``hydra.searchpath=[...]``, launchers, sweepers and
shell completion (``aimc sweep -sc install=bash`` completes ``aimc``'s commands and each command's keys).

Settings are typed (the schema in :mod:`aimcbench.config`, registered in Hydra's ConfigStore) and validated by a
Hydra callback before any job starts, every ``-m`` value included. A bad setting, a composition error or a user
error inside a job ends with exit status 2 and one line ``aimc: error: <key>: <what is allowed>``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

COMMANDS = {
    "train": "train a model digitally (or reuse the cached one) and print its test metrics",
    "sweep": "Monte Carlo sweep: program many simulated chips per point, write tables and plots",
    "report": "rebuild tables and plots from sweep directories; merge several sweeps",
    "tiles": "print how each analog layer maps onto crossbar arrays, and the total array count",
    "optimize": "choose each layer's conductance range and ADC full scale (convex program on the error model)",
    "cost": "print energy, latency and area per inference of each analog layer and in total",
}

USAGE = """usage: aimc <command> [key=value ...] [hydra flags]     (or: aimc-<command> ...)

Monte Carlo experiments for analog in-memory computing.

commands:
{commands}

Each command is a Hydra app: `aimc sweep --help` lists its config groups and keys,
`aimc sweep --cfg job` prints the composed config, `aimc sweep -m hardware=pcm,rram` runs one
sweep per choice. Examples:
  aimc sweep hardware=pcm sweep=adc_bits
  aimc sweep model._target_=mynets.LeNet5 model.checkpoint=lenet5.pt hardware=pcm
  aimc report outputs/sweep/*
  aimc tiles model=mlp3 hardware=rram
"""
VALUE_FLAGS = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
               "-cd", "--config-dir", "--experimental-rerun", "-sc", "--shell-completion", "-i", "--info"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    return USAGE.format(commands="\n".join(f"  {name:<{width}}  {desc}" for name, desc in COMMANDS.items()))


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
        elif "=" in arg and not os.path.isdir(arg):  # run directories are named key=value,...: a dir is a dir
            out.append(arg)
        else:
            dirs.append(arg)
    if dirs:
        quoted = ",".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
        out.append(f"dirs=[{quoted}]")
    return out


def run_command(command: str, args: Sequence[str]) -> None:
    """Run the Hydra app of ``command`` with ``args`` (what follows the command on the command line)."""
    from hydra._internal.utils import _run_hydra, get_args_parser

    from aimcbench.commands._common import fail, user_errors
    from aimcbench.commands.validation import composition_error
    from aimcbench.config.store import register
    from aimcbench.configs import CONFIG_DIR

    register()
    task = importlib.import_module(f"aimcbench.commands.{command}").run
    args = report_args(args) if command == "report" else list(args)
    if command == "sweep" and "--wait" in args:  # `aimc sweep --wait ...` is the setting wait=true
        args = [a for a in args if a != "--wait"] + ["wait=true"]
    parser = get_args_parser()
    parsed = parser.parse_args(args)
    # Hydra prints its own errors and exits 1 unless HYDRA_FULL_ERROR is set; set, they reach us and become one
    # line with exit 2 (a user who set it gets Hydra's full traceback instead).
    user_full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        # hydra.main's own core, called with explicit arguments so `aimc <command>` needs no sys.argv rewriting.
        _run_hydra(args=parsed, args_parser=parser, task_function=task, config_path=str(CONFIG_DIR),
                   config_name=command)
    except user_errors() as err:
        if user_full:
            raise
        fail(str(err))
    except Exception as err:  # noqa: BLE001 - Hydra/OmegaConf raise many types for bad input
        if user_full or not type(err).__module__.startswith(("hydra", "omegaconf")):
            raise
        fail(str(composition_error(err, command)))
    finally:
        if not user_full:
            os.environ.pop("HYDRA_FULL_ERROR", None)


def _complete(args: Sequence[str]) -> None:
    """Bash completion for ``aimc``: the installed script calls ``aimc -sc query=bash`` with COMP_LINE set; complete
    the command name, or hand the rest of the line to that command's app (Hydra completes its keys)."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        prefix = words[1] if len(words) == 2 else ""
        print(" ".join(c for c in COMMANDS if c.startswith(prefix)))
        return
    command = words[1]
    if command not in COMMANDS:
        return
    # Hydra strips the program name from COMP_LINE; drop the command word too.
    rest = line.split(command, 1)[1]
    os.environ["COMP_LINE"] = "aimc" + rest
    os.environ["COMP_POINT"] = str(len(os.environ["COMP_LINE"]))
    run_command(command, list(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aimc`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] in (["-sc", "query=bash"], ["--shell-completion", "query=bash"]):
        _complete(args)
        return 0
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from aimcbench import __version__

        print(f"aimc {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        from aimcbench.commands._common import fail

        fail(f"command: unknown {command!r}; allowed: {', '.join(COMMANDS)} (see aimc --help)")
    run_command(command, rest)
    return 0


def _entry(command: str):
    def entry() -> int:
        run_command(command, sys.argv[1:])
        return 0

    entry.__name__ = f"{command}_main"
    entry.__doc__ = f"Entry point of the ``aimc-{command}`` console script."
    return entry


sweep_main = _entry("sweep")
train_main = _entry("train")
tiles_main = _entry("tiles")
report_main = _entry("report")
optimize_main = _entry("optimize")
cost_main = _entry("cost")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
