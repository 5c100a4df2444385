"""The ``aimc`` commands; each module exposes ``run(cfg)``, the Hydra task of its app (see aimcbench.cli)."""
