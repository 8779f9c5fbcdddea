"""compare_optimizers: the notes' update rules and AlgoPerf's baselines, each tuned, on MNIST-1D (see config.py).

Modules: ``config`` (defaults, command, expected result), ``main`` (flags only),
``experiment`` (validation, the tuned / untuned train mode, the 2-D mode), ``tune``
(the learning-rate grid in one run_sweep and the choice on validation; reusable),
``run`` (one ``fit`` run / the loop over runs), ``sweep`` (run_sweep members as runs),
``optim`` (optimizers and schedules by name), ``report`` (tables, curves, profiles,
JSON), ``sensitivity`` (the learning-rate sensitivity figure), ``report_md``
(report.md and its reading), ``trajectories`` (the 2-D mode, PNG and GIF).
"""
