"""Typed hardware settings for the simulator, and their validation.

The dataclasses below are the schema, and their defaults are the exact chip (the ``ideal`` profile); every
profile under ``configs/hardware/`` states only how it differs. Every field carries its documentation in
``metadata["doc"]`` and, where it applies, the allowed choices or numeric range, so that validation can
name the key and say what is allowed in one line.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml


from .fields import _NO_DEFAULT, ConfigError, _f  # noqa: F401 - re-exported: the settings' public names
from .config_noise import ColumnNoiseConfig, WeightNoiseConfig  # noqa: F401 - sections of HardwareConfig
from .config_circuit import ADCNonidealConfig, ArrayConfig, check_circuit


@dataclass
class DeviceConfig:
    """The memory device that stores the weights."""

    model: str = _f("device model: ideal (exact weights), pcm (aihwkit PCMLikeNoiseModel physics), rram "
                    "(study 002 cells with programming variation), rram_signed (study 002 level 1: signed weights "
                    "quantized to program_bits, variation on the signed weight relative to variation_range, one signed "
                    "column), weight_noise (studies 001/004, on weights), stuck_at (rram cells of which the fractions "
                    "stuck_at_gmin_frac / stuck_at_gmax_frac are stuck at g_min / g_max, per chip)",
                    choices=("ideal", "pcm", "rram", "rram_signed", "weight_noise", "stuck_at"), default='ideal')
    g_max_uS: float = _f("largest programmable conductance in microsiemens", lo=0.0, lo_open=True, default=25.0)
    g_min_uS: Optional[float] = _f("smallest conductance (an idle cell) in microsiemens; null: derived from "
                                   "on_off_ratio", lo=0.0, default=0.0)
    on_off_ratio: Optional[float] = _f("g_max/g_min; used when g_min_uS is null (null and null: g_min = 0)",
                                       lo=1.0, lo_open=True, default=None)
    v_read_V: float = _f("read voltage at full-scale input; converts conductance to column current for an ADC "
                         "range given in microamps", lo=0.0, lo_open=True, default=0.2)
    prog_noise_scale: float = _f("PCM programming-noise multiplier (1 = aihwkit's calibrated model)", lo=0.0, default=0.0)
    read_noise_scale: float = _f("PCM 1/f read-noise multiplier (1 = calibrated)", lo=0.0, default=0.0)
    drift_scale: float = _f("PCM drift-exponent multiplier (0 = no drift)", lo=0.0, default=0.0)
    variation: float = _f("RRAM programming variation: std of each cell as a fraction of the conductance range "
                          "g_max - g_min (study 002; 0.0156 ... 0.1248); rram_signed: of variation_range",
                          lo=0.0, default=0.0)
    program_bits: Optional[int] = _f("programming-target resolution in bits over the conductance range "
                                     "(null: analog targets)", lo=1, hi=16, default=None)
    variation_range: str = _f("rram_signed (study 002 level 1) only: the range that device.variation is a fraction "
                              "of. max_abs: max|W|, one cell's span in weight units (std variation * max|W| on the "
                              "signed weight, 1/sqrt(2) of the level-2 pair's sqrt(2) * variation * max|W|: the "
                              "reading under which the study's 'more pronounced in Level-2' holds); full_span: the "
                              "signed span 2 max|W| (std 2 * variation * max|W|, sqrt(2) times level 2's)",
                              choices=("max_abs", "full_span"), default="max_abs")
    stuck_at_gmin_frac: float = _f("stuck_at: fraction in [0, 1] of the cells (each cell of a pair) stuck at g_min "
                                   "(stuck-off), drawn per cell and chip at programming", lo=0.0, hi=1.0, default=0.0)
    stuck_at_gmax_frac: float = _f("stuck_at: fraction in [0, 1] of the cells stuck at g_max (stuck-on); "
                                   "stuck_at_gmin_frac + stuck_at_gmax_frac <= 1", lo=0.0, hi=1.0, default=0.0)
    bits_per_cell: Optional[int] = _f("bits one cell stores when a weight is sliced over mapping.weight_slices cells (null: analog cells, a slice's share as one analog level)", lo=1, hi=16, default=None)


@dataclass
class MappingConfig:
    """How a layer's weight matrix is laid out on crossbar arrays."""

    weight_scaling: str = _f("which max|W| maps to the full conductance range: one per array, per column "
                             "within an array, or one per layer", choices=("per_tile", "per_column", "per_layer"), default='per_layer')
    differential: str = _f("signed weights on a pair g+ - g-: combined (read as one signed column) or "
                           "separate_adc (two columns each digitized, subtracted digitally)",
                           choices=("combined", "separate_adc"), default='combined')
    tile_rows: Optional[int] = _f("array rows (inputs per array); null: a layer is one array", lo=1, default=None)
    tile_cols: Optional[int] = _f("array columns; with separate_adc each output takes two; null: untiled", lo=2, default=None)
    conv_rows: str = _f("conv input rows per array: flat (fill all rows) or channel_aligned "
                        "(floor(tile_rows/(k*k)) whole input channels, study 002)", choices=("flat", "channel_aligned"), default='flat')
    weight_slices: int = _f("cells (of device.bits_per_cell bits each) per weight, combined by digital shift-and-add; each slice on its own columns and ADC conversions (1: one cell per weight)", lo=1, hi=16, default=1)


@dataclass
class DACConfig:
    """Input digital-to-analog conversion."""

    bits: Optional[int] = _f("DAC resolution in bits (null: exact inputs)", lo=2, hi=24, default=None)
    bound: float = _f("clip bound of the normalized input (full-scale = 1)", lo=0.0, lo_open=True, default=1.0)
    noise_management: str = _f("input scaling per input vector and array: abs_max (divide by max|x|, aihwkit) "
                               "or none (divide by input_range)", choices=("abs_max", "none"), default='abs_max')
    input_range: float = _f("with noise_management none: the input value applied at full-scale voltage "
                            "(6 for ReLU6 activations)", lo=0.0, lo_open=True, default=1.0)
    signed: bool = _f("true: symmetric DAC with 2^bits-1 levels over [-bound, bound] (step 2*bound/(2^bits-2)); "
                      "false: magnitude with 2^bits levels over [0, bound], negative inputs in a second read phase", default=True)
    input_bits_per_cycle: Optional[int] = _f("input bits applied per read cycle (bit-serial: ceil(bits / this) cycles, each digitized by the ADCs); null: all bits in one cycle", lo=1, hi=24, default=None)


@dataclass
class ADCConfig:
    """Output analog-to-digital conversion of each array column."""

    bits: Optional[int] = _f("ADC resolution in bits (null: no quantization)", lo=1, hi=24, default=None)
    bound: Optional[float] = _f("clip bound of the normalized output (null: no clipping unless range_uA)",
                                lo=0.0, lo_open=True, default=12.0)
    range_uA: Optional[float] = _f("physical full scale in microamps of an unsigned ADC over [0, range_uA] "
                                   "(study 002: 45); overrides bound", lo=0.0, lo_open=True, default=None)
    quantizer: str = _f("uniform or mulaw (study 000 eq. 4, mu = 2^bits - 1)", choices=("uniform", "mulaw"), default='uniform')
    out_noise: float = _f("std of Gaussian output noise added before the ADC, normalized units", lo=0.0, default=0.0)
    bound_management: str = _f("iterative: while an output clips, redo that input halved (up to 1000x); none",
                               choices=("iterative", "none"), default='iterative')
    full_scale: str = _f("fixed: the full scale is adc.bound; calibrated_max (study 003's naive mapping): each layer's is the largest "
                         "ideal column output on calibration inputs (AnalogModel.calibrate_adc, aimc optimize)", choices=("fixed", "calibrated_max"), default='fixed')
    columns_per_adc: int = _f("array columns sharing one ADC, converted one after another (1: every column its own ADC)", lo=1, default=1)
    nonideal: ADCNonidealConfig = _f("static errors of each ADC per chip: offset, gain, INL/DNL (all 0: the ideal ADC)", factory=ADCNonidealConfig)


@dataclass
class LayerSelection:
    """Which modules are analog; every other module runs digitally."""

    types: list = _f("module types made analog, from Linear, Conv2d", factory=lambda: ['Linear', 'Conv2d'])
    include: Optional[list] = _f("fnmatch patterns of module names to make analog (null: all of the types)", default=None)
    exclude: list = _f("fnmatch patterns of module names kept digital", factory=list)
    indices: Optional[list] = _f("positions among the selected layers in model order, negative from the end "
                                 "(e.g. [0] = first layer only; null: all)", default=None)


@dataclass
class HardwareConfig:
    """A complete hardware profile: device, mapping, converters, time and which layers are analog."""

    name: str = _f("profile name (for reports)", default='ideal')
    device: DeviceConfig = _f("the memory device", factory=DeviceConfig)
    t_inference_s: float = _f("seconds after programming (plus aihwkit's t0 = 20 s) at which chips are read", lo=0.0, default=0.0)
    drift_compensation: str = _f("global: one factor per array from an identity read-out; per_column; none",
                                 choices=("none", "global", "per_column"), default='none')
    mapping: MappingConfig = _f("weight layout on arrays", factory=MappingConfig)
    dac: DACConfig = _f("input converter", factory=DACConfig)
    adc: ADCConfig = _f("output converter", factory=ADCConfig)
    weight_noise: WeightNoiseConfig = _f("generic weight noise (device.model weight_noise)", factory=WeightNoiseConfig)
    layers: LayerSelection = _f("which layers are analog", factory=LayerSelection)
    column_noise: ColumnNoiseConfig = _f("study 003 thermal/shot column noise and programming noise in uS", factory=ColumnNoiseConfig)
    array: ArrayConfig = _f("the array circuit beyond its cells: wire resistance per cell (IR drop)", factory=ArrayConfig)
    # Any rather than Optional[dict]: OmegaConf cannot merge a mapping into a typed mapping that is null.
    per_layer: Any = _f("per-layer settings {layer name: {g_min_uS, g_max_uS, adc_bound}} that replace the "
                        "profile's for that layer (written by aimc optimize); null: none", default=None)

    def for_layer(self, name: str) -> "HardwareConfig":
        """This profile with the ``per_layer`` settings of layer ``name`` applied (itself when there are none)."""
        over = (self.per_layer or {}).get(name)
        if not over:
            return self
        dev = {k: over[k] for k in ("g_min_uS", "g_max_uS") if k in over}
        adc = {"bound": over["adc_bound"]} if "adc_bound" in over else {}
        return dataclasses.replace(self, per_layer=None, device=dataclasses.replace(self.device, **dev),
                                   adc=dataclasses.replace(self.adc, **adc))

    def replace(self, *overrides: str, **changes: Any) -> "HardwareConfig":
        """A validated copy with dotted overrides (``"adc.bits=6"``) and/or keyword changes, nested keys joined
        by double underscores (``adc__bits=6``): ``load_hardware("pcm").replace(adc__bits=6, t_inference_s=3600)``."""
        dotted = list(overrides) + [f"{k.replace('__', '.')}={_yaml_text(v)}" for k, v in changes.items()]
        return hardware_from_dict(apply_overrides(dataclasses.asdict(self), dotted))

    @property
    def g_min_uS(self) -> float:
        """The idle-cell conductance, from g_min_uS or on_off_ratio."""
        d = self.device
        if d.g_min_uS is not None:
            return d.g_min_uS
        return d.g_max_uS / d.on_off_ratio if d.on_off_ratio else 0.0


_ALLOWED_TYPES = ("Linear", "Conv2d")


def _check_scalar(key: str, value: Any, tp: Any, meta: dict) -> Any:
    """Check one scalar against its annotated type and metadata; return it converted."""
    if meta.get("check") is not None:  # a value with its own rule (e.g. a mapping of known shape)
        allowed = meta["check"](value)
        if allowed:
            raise ConfigError(key, f"must be {allowed} (got {value!r})")
        return value
    if tp is typing.Any:
        return value
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = True, args[0]
    if value is None:
        if optional:
            return None
        raise ConfigError(key, "must not be null")
    choices, lo, hi = meta.get("choices"), meta.get("lo"), meta.get("hi")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false (got {value!r})")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string (got {value!r})")
        if choices and value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)} (got {value!r})")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping{' or null' if optional else ''} (got {value!r})")
        return dict(value)
    if tp is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list (got {value!r})")
        return list(value)
    kind = "an integer" if tp is int else "a number"
    ok = isinstance(value, int) if tp is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (tp is float and not math.isfinite(value)):
        raise ConfigError(key, f"must be {kind}{' or null' if optional else ''} (got {value!r})")
    rng = f"{'(' if meta.get('lo_open') else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        raise ConfigError(key, f"must be {kind} in {rng} (got {value!r})")
    if hi is not None and value > hi:
        raise ConfigError(key, f"must be {kind} in {rng} (got {value!r})")
    return tp(value)


def _build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from a plain mapping, checking keys, types and ranges; absent keys take the
    field's default. Shared by every settings class of the package (one validation path)."""
    if not isinstance(data, dict):
        raise ConfigError(prefix or cls.__name__, f"must be a mapping (got {data!r})")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in names:
            raise ConfigError(f"{prefix}.{k}" if prefix else str(k), f"unknown key; allowed: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(key, "missing (required)")
            kwargs[f.name] = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            continue
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name], key)
        else:
            kwargs[f.name] = _check_scalar(key, data[f.name], tp, dict(f.metadata))
    return cls(**kwargs)


def _check_consistency(hw: HardwareConfig, prefix: str) -> None:
    """Rules that span several fields."""
    p = f"{prefix}." if prefix else ""
    for t in hw.layers.types:
        if t not in _ALLOWED_TYPES:
            raise ConfigError(f"{p}layers.types", f"entries must be from {', '.join(_ALLOWED_TYPES)} (got {t!r})")
    if hw.layers.indices is not None and not all(isinstance(i, int) for i in hw.layers.indices):
        raise ConfigError(f"{p}layers.indices", "must be a list of integers or null")
    if hw.g_min_uS >= hw.device.g_max_uS:
        raise ConfigError(f"{p}device.g_min_uS", f"must be below g_max_uS = {hw.device.g_max_uS}")
    _check_stuck_at(hw.device, p)
    if hw.adc.bits is not None and hw.adc.bound is None and hw.adc.range_uA is None:
        raise ConfigError(f"{p}adc.bound", f"an ADC with bits = {hw.adc.bits} needs a full scale: set adc.bound "
                                           "(normalized units, e.g. 12) or adc.range_uA (got null for both)")
    if hw.adc.quantizer == "mulaw" and hw.adc.bits is None:
        raise ConfigError(f"{p}adc.bits", "mulaw needs a number of bits (got null)")
    _check_per_layer(hw, p)
    check_circuit(hw, p)
    c = hw.column_noise
    if (c.thermal or c.shot) and hw.adc.bound_management != "none":
        raise ConfigError(f"{p}adc.bound_management", "must be none with column_noise.thermal or shot "
                                                      f"(got {hw.adc.bound_management!r})")
    m = hw.mapping
    if (m.tile_rows is None) != (m.tile_cols is None):
        raise ConfigError(f"{p}mapping.tile_cols", "tile_rows and tile_cols are both set or both null")
    if m.differential == "separate_adc" and m.tile_cols is not None and m.tile_cols % 2:
        raise ConfigError(f"{p}mapping.tile_cols", "must be even with separate_adc (two columns per output)")


def _check_stuck_at(d: DeviceConfig, p: str) -> None:
    """Stuck-at fractions: only the stuck_at device has faults, and at most every cell is stuck."""
    for key in ("stuck_at_gmin_frac", "stuck_at_gmax_frac"):
        if getattr(d, key) > 0 and d.model != "stuck_at":
            raise ConfigError(f"{p}device.{key}", f"must be 0 unless device.model is stuck_at (got "
                                                  f"{getattr(d, key)!r} with model {d.model})")
    if d.stuck_at_gmin_frac + d.stuck_at_gmax_frac > 1:
        raise ConfigError(f"{p}device.stuck_at_gmax_frac", "stuck_at_gmin_frac + stuck_at_gmax_frac must be at most "
                                                          f"1 (got {d.stuck_at_gmin_frac} + {d.stuck_at_gmax_frac})")


_PER_LAYER_KEYS = ("g_min_uS", "g_max_uS", "adc_bound")


def _check_per_layer(hw: HardwareConfig, p: str) -> None:
    """per_layer: a mapping of layer names to mappings of positive numbers under _PER_LAYER_KEYS."""
    if hw.per_layer is None:
        return
    if not isinstance(hw.per_layer, dict):
        raise ConfigError(f"{p}per_layer", f"must be a mapping of layer names or null (got {hw.per_layer!r})")
    for name, over in hw.per_layer.items():
        key = f"{p}per_layer.{name}"
        if not isinstance(over, dict):
            raise ConfigError(key, f"must be a mapping with keys from {', '.join(_PER_LAYER_KEYS)} (got {over!r})")
        for k, v in over.items():
            if k not in _PER_LAYER_KEYS:
                raise ConfigError(f"{key}.{k}", f"unknown key; allowed: {', '.join(_PER_LAYER_KEYS)}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or \
                    (v == 0 and k != "g_min_uS"):
                raise ConfigError(f"{key}.{k}", f"must be a positive number (got {v!r})")
        g_min = over.get("g_min_uS", hw.g_min_uS)
        if g_min >= over.get("g_max_uS", hw.device.g_max_uS):
            raise ConfigError(f"{key}.g_min_uS", "must be below g_max_uS")


def config_dir() -> Path:
    """The packaged configs (``aimcbench/configs``; package data, so an installed wheel has them too)."""
    return Path(__file__).resolve().parents[1] / "configs"


def hardware_from_dict(data: dict, prefix: str = "hardware") -> HardwareConfig:
    """Validate a plain mapping (e.g. ``OmegaConf.to_container(cfg.hardware)``) into a HardwareConfig."""
    hw = _build(HardwareConfig, data, prefix)
    _check_consistency(hw, prefix)
    return hw


def _yaml_text(value: Any) -> str:
    """A Python value as the YAML text of an override's right-hand side."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _parse_value(text: str) -> Any:
    """Parse an override's right-hand side the way YAML would (``null``, numbers, lists, strings)."""
    return yaml.safe_load(text) if text.strip() else ""


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...], prefix: str = "hardware") -> dict:
    """Apply dotted ``key=value`` overrides to a nested mapping (a copy); unknown keys are errors."""
    import copy

    data = copy.deepcopy(data)
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"{prefix}", f"override {ov!r} must look like key=value")
        key, text = ov.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts):
            full = ".".join([prefix, *parts[: i + 1]])
            if not isinstance(node, dict) or part not in node:
                allowed = ", ".join(node) if isinstance(node, dict) else "(not a mapping)"
                raise ConfigError(full, f"unknown key; allowed: {allowed}")
            if i == len(parts) - 1:
                node[part] = _parse_value(text)
            else:
                node = node[part]
    return data


def field_docs(cls: type = HardwareConfig, prefix: str = "") -> dict[str, str]:
    """Every config key with its documentation (for ``aimc`` help text and the docs test)."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        out[key] = f.metadata.get("doc", "")
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(field_docs(hints[f.name], key + "."))
    return out
