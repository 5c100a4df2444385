"""The packaged Hydra configs of every ``aimc`` command (package data; Hydra path ``pkg://aimcbench.configs``).

Primary configs (sweep.yaml, train.yaml, ...) and the groups model/, dataset/, hardware/, sweep/, train/. Users add
their own options through Hydra's search path (``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``).
"""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
