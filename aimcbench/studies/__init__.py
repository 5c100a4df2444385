"""The studies that aimcbench reproduces: presets, manifests, claim checks (only the commands import this)."""
