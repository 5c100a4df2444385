"""Validation inside Hydra: a callback that checks the composed config before any job starts, and the translation
of Hydra's composition errors into one line ``<key>: <what is allowed>``.

Hydra composes with the typed schema (aimcbench.config), so unknown keys and wrong types fail while composing;
ranges, choices and cross-key rules are checked by :class:`ValidateCallback`:

* ``on_run_start``: the one job's config, before Hydra creates the run directory;
* ``on_multirun_start``: every value of every ``-m`` sweep (each with the others at their first choice), composed
  with the app's own config loader (so ``--config-dir`` and ``hydra.searchpath`` count), before the first job.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from aimcbench.commands._common import fail, plain, user_errors
from aimcbench.config import UsageError
from aimcbench.config.schema import APPS


def check_command(command: str, cfg: dict) -> None:
    """The checks of one command's composed plain config."""
    from aimcbench.config import check_config, check_sweep_config
    from aimcbench.sim import ConfigError, hardware_from_dict

    if command == "sweep":
        check_sweep_config(cfg)
    elif command == "report":
        from pathlib import Path

        for d in cfg.get("dirs") or []:
            if not Path(d).is_dir():
                raise UsageError("dirs", f"{d!r} is not a directory (give sweep run directories)")
    else:
        check_config(cfg)
    if command in ("sweep", "train", "optimize"):
        from aimcbench.config.resources import check_resources

        check_resources(command, cfg)
    if command == "optimize":
        from aimcbench.commands.optimize import check_optimize

        try:
            check_optimize(cfg, hardware_from_dict(cfg["hardware"]))
        except ConfigError as err:
            raise UsageError(err.key, str(err).split(": ", 1)[-1]) from None


def override_key(override: str) -> str:
    """The dotted key of a command-line override ('+a.b=1', '~a.b', 'a.b=1' -> 'a.b')."""
    return override.split("=", 1)[0].lstrip("+~").strip()


def check_overrides(command: str, overrides: list[str], cfg: Any) -> None:
    """Overrides that would be silently replaced: the sweep's own axis key is set at every point by
    sweep.values, so setting it on the command line would change nothing."""
    if command != "sweep":
        return
    axis = OmegaConf.select(cfg, "sweep.key", default=None)
    for ov in overrides:
        if axis and override_key(ov) == axis:
            raise UsageError(axis, f"is the axis of this sweep (sweep.key), set at every point from sweep.values; "
                                   f"set sweep.values=[...] instead, or choose another sweep=")


def _or_exit(check: Any) -> None:
    """Run ``check``; a user error prints one line and exits 2."""
    try:
        check()
    except user_errors() as err:
        fail(str(err))


def _schema_keys(command: str, parent: str) -> list[str] | None:
    """The keys the schema allows under dotted ``parent`` of a command's config (None: open or unknown)."""
    cls: Any = APPS.get(command)
    for part in [p for p in parent.split(".") if p]:
        if not dataclasses.is_dataclass(cls):
            return None
        cls = typing.get_type_hints(cls).get(part)
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else None


def composition_error(err: BaseException, command: str) -> UsageError:
    """One line naming the key for an error Hydra raised while composing or parsing overrides."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, name = str(err.missing_cfg_file).rpartition("/")
        if group:
            return UsageError(group, f"no option {name!r}; allowed: {', '.join(err.options or [])}")
    if isinstance(err, OverrideParseException):
        return UsageError("overrides", f"cannot parse override ({err.message.splitlines()[0]})")
    if "Ambiguous value for argument '" in str(err):
        text = str(err).split("Ambiguous value for argument '", 1)[1].split("'", 1)[0]
        return UsageError(text.split("=", 1)[0], f"{text!r} is a sweep; add -m to run one job per value, or write a "
                                                 "list as key=[a,b]")
    cause = err.__cause__ or err
    full_key = getattr(cause, "full_key", None) or getattr(err, "full_key", None)
    text = " ".join(str(cause).split("full_key:")[0].split())
    if full_key:
        parent = full_key.rpartition(".")[0]
        if "not in" in text or "Could not override" in str(err):
            keys = _schema_keys(command, parent)
            return UsageError(full_key, "unknown key" + (f"; allowed: {', '.join(keys)}" if keys else ""))
        value = getattr(cause, "value", None)
        got = f" (got {value!r})" if value is not None else ""
        return UsageError(full_key, f"{_type_words(text)}{got}")
    if "Could not override '" in str(err):
        key = str(err).split("Could not override '", 1)[1].split("'", 1)[0]
        keys = _schema_keys(command, key.rpartition(".")[0])
        return UsageError(key, "unknown key" + (f"; allowed: {', '.join(keys)}" if keys else ""))
    return UsageError("config", " ".join(str(err).split())[:300])


def _type_words(text: str) -> str:
    """OmegaConf's "Value 'x' of type 'str' could not be converted to Integer" as "must be an integer"."""
    for omega, words in (("Integer", "an integer"), ("Float", "a number"), ("Boolean", "true or false"),
                         ("String", "a string"), ("Dict", "a mapping"), ("List", "a list")):
        if f"converted to {omega}" in text or f"to a {omega}" in text or f"type {omega}" in text:
            return f"must be {words}"
    if "is not a ListConfig" in text or "Invalid type assigned" in text or "must be a list" in text:
        return "must be a list"
    return text[:200]


def _variants(overrides: list[str]) -> list[list[str]]:
    """Override lists to validate: the first choice of every -m sweep, then each choice of each sweep.

    Not the full product (which can be huge): every value is checked once, with the other sweeps at their first
    choice. Hydra's own overrides (hydra.*, hydra/...) and non-discrete sweeps (ranges, globs) are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    choices: list[list[str]] = []
    for ov in parser.parse_overrides(overrides):
        if ov.is_hydra_override():
            continue
        if ov.is_sweep_override():
            if not ov.is_discrete_sweep() or (ov.is_choice_sweep() and "glob(" in ov.input_line):
                continue
            key = ov.get_key_element()
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([ov.input_line])
    base = [c[0] for c in choices]
    out = [base]
    for i, c in enumerate(choices):
        out.extend(base[:i] + [v] + base[i + 1:] for v in c[1:])
    return out


class ValidateCallback(Callback):
    """Check every job's settings before Hydra starts the first one (see the module docstring).

    Hydra turns a callback's exceptions into warnings, so a problem ends the process here: one line, exit 2
    (SystemExit passes through Hydra)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        task = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
        _or_exit(lambda: check_overrides(config.hydra.job.name, task, config))
        cfg = plain(config)
        _or_exit(lambda: check_command(config.hydra.job.name, cfg))
        from aimcbench.config.resources import notices

        for line in notices(config.hydra.job.name, cfg):
            print(line, file=sys.stderr)

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs: Any) -> None:
        _or_exit(lambda: self._check_variants(config, config_name))

    @staticmethod
    def _check_variants(config: DictConfig, config_name: str | None) -> None:
        from hydra.core.global_hydra import GlobalHydra
        from hydra.types import RunMode

        command = config.hydra.job.name
        loader = GlobalHydra.instance().config_loader()
        task = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
        for variant in _variants(task):
            try:
                cfg = loader.load_configuration(config_name=config_name, overrides=variant, run_mode=RunMode.RUN)
            except UsageError:
                raise
            except Exception as err:  # noqa: BLE001 - Hydra and OmegaConf raise several types
                if type(err).__module__.startswith(("hydra", "omegaconf")):
                    raise composition_error(err, command) from None
                raise
            check_overrides(command, variant, cfg)
            check_command(command, plain(cfg))
