"""Settings of the ``aimc`` commands: one typed schema (dataclasses with defaults and a doc per field), registered
in Hydra's ConfigStore, and one validation path that ends in a one-line ``<key>: <what is allowed>`` error.

    from aimcbench.config import check_config, check_sweep_config, UsageError, point_configs
"""

from .errors import UsageError
from .points import parse_fixed, point_configs, set_dotted
from .schema import APPS, SECTIONS
from .validate import check_config, check_dataset, check_model, check_sweep_config

__all__ = ["APPS", "SECTIONS", "UsageError", "check_config", "check_dataset", "check_model", "check_sweep_config",
           "parse_fixed", "point_configs", "set_dotted"]
