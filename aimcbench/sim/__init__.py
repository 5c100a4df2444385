"""The crossbar simulator: plain PyTorch on typed settings (no Hydra).

    from aimcbench.sim import load_hardware, to_analog
    hw = load_hardware("pcm", ["adc.bits=6", "t_inference_s=1000"])
    amodel = to_analog(model, hw, chips=40, seed=0)
    y = amodel(x)            # [40, B, ...]
    amodel.drift(3600.0)     # the same chips read at another time
"""

from .config import ConfigError, HardwareConfig, config_dir, field_docs, hardware_from_dict
from .profiles import load_hardware, profile_names
from .convert import AnalogModel, to_analog
from .layers import select_layers
from .tiling import plan_layer, tile_plan

# Bumped whenever the same config draws other numbers (a sweep point's hash includes it, so stored points of an
# older simulator are never mixed with new ones). 2: counter-based chip streams (issue 15). 3: an unsigned ADC's
# sign phases per input vector (a vector without negative inputs is read once; the positive phase draws the
# read's own noise stream).
NUMBERS_VERSION = 3

__all__ = ["NUMBERS_VERSION", "ConfigError", "HardwareConfig", "AnalogModel", "config_dir", "field_docs", "hardware_from_dict",
           "load_hardware", "plan_layer", "profile_names", "select_layers", "tile_plan", "to_analog"]
