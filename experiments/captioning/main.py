r"""Image captioning of digit canvases with a CNN -> LSTM captioner, plain and with soft attention.

Example::

    python -m experiments.captioning.main --workdir=/tmp/captioning

Ends by printing each decoder's greedy exact-match rate and BLEU-4; writes ``summary.md``/``.csv``
(token accuracy, exact match, BLEU-4 for greedy and temperature sampling), ``results.json``,
``loss.png``, ``captions.png`` (test canvases with their generated captions) and ``attention.png``.
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.captioning import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for the tables, results.json and the PNGs.")


def main(argv) -> None:
    del argv
    workdir = _common.lock_workdir(_WORKDIR.value)
    out = experiment.run(_CONFIG.value, workdir)
    print(f"seconds={out.seconds:.1f} workdir={workdir}")
    for row in out.rows:
        if row["decoding"] == "greedy":
            print(
                f"{row['decoder']}: exact match {row['exact_match']:.3f}, BLEU-4 {row['bleu4']:.3f}, "
                f"token accuracy {row['token_accuracy']:.3f}"
            )


if __name__ == "__main__":
    _common.run(main)
