"""CPU seconds per update of a speedrun preset inside ``fit``'s compiled loop (synthetic images).

Usage (from the repository root)::

    python -m experiments.speedrun.measure cpu94 im2col

Prints compilation CPU seconds and CPU seconds per update (``time.process_time``: user + sys of
every thread, so a loaded machine inflates wall time but not this figure much).
"""

from __future__ import annotations

import sys
import time

import jax

from experiments.speedrun import config as speedrun_config
from experiments.speedrun import experiment


def seconds_per_update(preset: str, conv_impl: str, *, num_steps: int = 3) -> tuple[float, float]:
    """``(compile CPU-s, CPU-s per update)`` of ``preset`` with ``conv_impl``: fit of 1 step, then of ``1 + num_steps``."""
    config = speedrun_config.get_config(preset)
    config.conv_impl, config.dataset, config.progress = conv_impl, "synthetic", False
    config.train_size, config.whiten_examples = max(2 * config.batch_size, 512), 256
    config = experiment.validate(config)
    data = experiment.load_data(config)
    programs = experiment._programs(config, data["train"])
    train = experiment.train_arrays(config, data["train"], 0)

    def cpu_seconds(steps: int) -> float:
        start = time.process_time()
        result = experiment._fit(programs, train, None, config, seed=0, num_steps=steps)
        jax.block_until_ready(result.state.params)
        return time.process_time() - start

    compile_seconds = cpu_seconds(1)
    one, more = cpu_seconds(1), cpu_seconds(1 + num_steps)
    return compile_seconds, (more - one) / num_steps


if __name__ == "__main__":
    preset, impl = sys.argv[1], sys.argv[2]
    compiled, per_update = seconds_per_update(preset, impl)
    print(f"{preset} conv_impl={impl}: compilation + 1 update {compiled:.1f} CPU-s; {per_update:.2f} CPU-s per update")
