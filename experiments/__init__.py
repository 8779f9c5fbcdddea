"""Experiments of jax231: scripts that compare the methods of CS231n on small data.

Each experiment is a package run from the repository root with ``python -m``::

    python -m experiments.compare_optimizers.main --workdir=runs/compare_optimizers
    python -m experiments.compare_regularizers.main --workdir=runs/compare_regularizers

Its ``main.py`` is the only place defining flags; ``config.py`` (an ml_collections
``ConfigDict`` returned by ``get_config()``) documents the command, the expected
runtime and the expected result. Shared infrastructure (flag validation, registries,
report writers, plots, performance profiles) lives in :mod:`experiments._common`.
"""
