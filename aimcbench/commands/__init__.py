"""The ``aimc`` subcommands; each module exposes ``main``, a ``@hydra.main`` function with its own config."""
