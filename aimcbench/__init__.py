"""aimcbench: Monte Carlo experiments for analog in-memory computing."""

__version__ = "0.1.0"
