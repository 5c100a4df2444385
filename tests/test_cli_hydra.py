"""The commands are plain Hydra apps: shell completion, the user's search path, typed defaults with docs, and
hardware profiles written as differences (read the same way by Hydra and by the simulator without Hydra)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import typing

import pytest
import yaml
from conftest import REPO, aimc

from aimcbench.config.schema import APPS
from aimcbench.sim import HardwareConfig, load_hardware, profile_names
from aimcbench.sim.config import ConfigError

MY_CHIP = "defaults: [pcm, _self_]\nname: mychip\nadc:\n  bits: 6\n"


def _complete(line: str) -> list[str]:
    """Source `aimc sweep -sc install=bash` in bash and ask the completion function for ``line``."""
    script = subprocess.run([shutil.which("aimc"), "sweep", "-sc", "install=bash"], capture_output=True, text=True,
                            timeout=120)
    assert script.returncode == 0, script.stderr
    assert "complete -o nospace -o default -F hydra_bash_completion aimc" in script.stdout
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"],
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    words = line.split(" ")
    prog = (f'{script.stdout}\nCOMP_LINE="{line}"; COMP_POINT={len(line)}; COMP_CWORD={len(words) - 1}\n'
            'hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}"\n')
    res = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env, timeout=120)
    return res.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("aimc") is None, reason="needs bash and aimc")
def test_bash_completion_completes_commands_and_each_commands_keys():
    assert _complete("aimc sw") == ["sweep"]
    assert "hardware=pcm" in _complete("aimc sweep hardware=")
    assert "mc.chips=" in _complete("aimc sweep mc.")


@pytest.mark.parametrize("how", ["searchpath", "config-dir"])
def test_a_users_own_profile_through_hydras_search_path(tmp_path, how):
    (tmp_path / "conf" / "hardware").mkdir(parents=True)
    (tmp_path / "conf" / "hardware" / "mychip.yaml").write_text(MY_CHIP)
    extra = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]"] if how == "searchpath" else \
        ["--config-dir", str(tmp_path / "conf")]
    res = aimc("sweep", *extra, "hardware=mychip", "--cfg", "job")
    assert res.returncode == 0, res.stderr
    hw = yaml.safe_load(res.stdout)["hardware"]
    assert hw["name"] == "mychip" and hw["adc"]["bits"] == 6 and hw["device"]["model"] == "pcm"
    # the studies' presets still resolve beside a user's search path
    res = aimc("sweep", *extra, "experiment=s000_fig6", "--cfg", "job")
    assert res.returncode == 0 and "chips:" in res.stdout, res.stderr


def test_load_hardware_reads_a_users_file_with_its_defaults_list(tmp_path):
    path = tmp_path / "mychip.yaml"
    path.write_text(MY_CHIP)
    hw = load_hardware(path, ["t_inference_s=3600"])
    pcm = load_hardware("pcm")
    assert hw.adc.bits == 6 and hw.t_inference_s == 3600.0
    assert dataclasses.replace(hw, name="pcm", adc=pcm.adc, t_inference_s=0.0) == pcm
    path.write_text("adc:\n  bitz: 6\n")
    with pytest.raises(ConfigError, match=r"hardware\.adc\.bitz: unknown key"):
        load_hardware(path)
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        load_hardware("nope")


def test_defaults_are_the_exact_chip_and_replace_validates():
    hw = HardwareConfig()
    assert hw.device.model == "ideal" and hw.adc.bits is None and hw.dac.bits is None and hw.mapping.tile_rows is None
    assert load_hardware("ideal") == hw
    six = load_hardware("pcm").replace(adc__bits=6, t_inference_s=60.0)
    assert six.adc.bits == 6 and six.t_inference_s == 60.0 and six.device == load_hardware("pcm").device
    with pytest.raises(ConfigError, match=r"hardware\.adc\.bits: must be an integer in \[1, 24\]"):
        load_hardware("pcm").replace(adc__bits=0)


@pytest.mark.parametrize("name", profile_names())
def test_profiles_state_only_differences(name):
    """A profile names a key only where it differs from what it builds on (the schema or its defaults list)."""
    from aimcbench.sim.profiles import _find, profile_dict

    data = yaml.safe_load(_find(name, ()).read_text())
    parents = [d for d in data.pop("defaults", []) if d != "_self_"]
    base = dataclasses.asdict(load_hardware(parents[-1]) if parents else HardwareConfig())

    def same(own: dict, ref: dict, prefix: str) -> list[str]:
        out = []
        for k, v in own.items():
            if isinstance(v, dict) and isinstance(ref.get(k), dict) and k != "per_layer":
                out += same(v, ref[k], f"{prefix}{k}.")
            elif k != "name" and ref.get(k) == v:
                out.append(prefix + k)
        return out

    assert same(data, base, "") == []
    assert profile_dict(_find(name, ()))  # resolves


def _fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.append((prefix + f.name, f))
        if dataclasses.is_dataclass(hints[f.name]):
            out += _fields(hints[f.name], f"{prefix}{f.name}.")
    return out


@pytest.mark.parametrize("command", sorted(APPS))
def test_every_setting_has_a_doc_and_a_default(command):
    for key, f in _fields(APPS[command]):
        assert len(f.metadata.get("doc") or "") > 10, f"{command}: {key} has no doc"
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        assert has_default, f"{command}: {key} has no default"


def test_wait_flag_is_the_wait_setting():
    res = aimc("sweep", "--wait", "--cfg", "job")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout)["wait"] is True
    assert yaml.safe_load(aimc("sweep", "--cfg", "job").stdout)["wait"] is False
