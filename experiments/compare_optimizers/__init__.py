"""compare_optimizers: the notes' update rules side by side on MNIST-1D (see config.py).

Modules: ``config`` (defaults, command, expected result), ``main`` (flags only),
``experiment`` (validation and the two modes), ``run`` (one run / the loop over runs),
``optim`` (optimizers and schedules by name), ``report`` (tables, curves, profile),
``trajectories`` (the 2-D mode).
"""
