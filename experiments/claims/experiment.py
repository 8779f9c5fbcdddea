"""Runs the selected claims and writes ``claims.md``, ``claims.csv``, ``claims.json`` and one PNG each."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from typing import Any

import ml_collections

from experiments import _common as common
from experiments.claims import (
    activations,
    base,
    initialization,
    optimization,
    recurrent,
    regularization,
)

CLAIMS: dict[str, base.ClaimFn] = {
    "relu_vs_tanh": activations.relu_vs_tanh,
    "sigmoid_saturation": activations.sigmoid_saturation,
    "dead_relu": activations.dead_relu,
    "constant_init_symmetry": initialization.constant_init_symmetry,
    "init_scale": initialization.init_scale,
    "batch_norm": initialization.batch_norm,
    "batch_norm_identity": initialization.batch_norm_identity,
    "dropout_l2_gap": regularization.dropout_l2_gap,
    "l1_vs_l2": regularization.l1_vs_l2,
    "ensemble": regularization.ensemble,
    "polyak": regularization.polyak,
    "random_vs_grid": optimization.random_vs_grid,
    "sgd_zigzag": optimization.sgd_zigzag,
    "adam_bias_correction": optimization.adam_bias_correction,
    "adam_rotation": optimization.adam_rotation,
    "lbfgs_batch": optimization.lbfgs_batch,
    "svm_vs_softmax": optimization.svm_vs_softmax,
    "rnn_spectral": recurrent.rnn_spectral,
    "lstm_vs_rnn": recurrent.lstm_vs_rnn,
}
"""Every claim experiment by CLI name, in report order."""

VERDICTS: dict[str, base.VerdictFn] = {
    "relu_vs_tanh": activations.relu_vs_tanh_holds,
    "sigmoid_saturation": activations.sigmoid_saturation_holds,
    "dead_relu": activations.dead_relu_holds,
    "constant_init_symmetry": initialization.constant_init_symmetry_holds,
    "init_scale": initialization.init_scale_holds,
    "batch_norm": initialization.batch_norm_holds,
    "batch_norm_identity": initialization.batch_norm_identity_holds,
    "dropout_l2_gap": regularization.dropout_l2_gap_holds,
    "l1_vs_l2": regularization.l1_vs_l2_holds,
    "ensemble": regularization.ensemble_holds,
    "polyak": regularization.polyak_holds,
    "random_vs_grid": optimization.random_vs_grid_holds,
    "sgd_zigzag": optimization.sgd_zigzag_holds,
    "adam_bias_correction": optimization.adam_bias_correction_holds,
    "adam_rotation": optimization.adam_rotation_holds,
    "lbfgs_batch": optimization.lbfgs_batch_holds,
    "svm_vs_softmax": optimization.svm_vs_softmax_holds,
    "rnn_spectral": recurrent.rnn_spectral_holds,
    "lstm_vs_rnn": recurrent.lstm_vs_rnn_holds,
}
"""Each claim's verdict ``holds(numbers, cfg)`` on its measured ``ClaimResult.numbers`` (what the claim uses)."""


def validate(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The selected claim names; a ``UsageError`` (one line, exit 2) for an unknown one."""
    return common.parse_choices("config.claims", config.claims, tuple(CLAIMS))


def run_claim(name: str, config: ml_collections.ConfigDict, workdir: pathlib.Path) -> base.ClaimResult:
    """Runs one claim with its sub-config ``config[name]``."""
    return CLAIMS[name](config[name], workdir)


def report(results: list[base.ClaimResult], seconds: dict[str, float]) -> str:
    """The markdown of ``claims.md``: one table, then each claim's figure."""
    rows = [
        {
            "claim": r.name,
            "statement": r.claim,
            "measurement": r.measurement,
            "verdict": base.verdict(r.holds),
            "seconds": f"{seconds[r.name]:.0f}",
        }
        for r in results
    ]
    held = sum(r.holds for r in results)
    lines = [
        "# The notes' claims, checked",
        "",
        f"{held} of {len(results)} claims hold here; total {sum(seconds.values()):.0f} s.",
        "",
        common.markdown_table(rows, ["claim", "statement", "measurement", "verdict", "seconds"]),
    ]
    for r in results:
        lines += [
            f"## {r.name}: {base.verdict(r.holds)}",
            "",
            r.claim,
            "",
            r.measurement,
            "",
            f"![{r.name}]({r.figure})",
            "",
        ]
    return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: Any, log: Callable[[str], None] = print) -> str:
    """Runs every selected claim; writes the report files; returns the markdown."""
    names = validate(config)
    workdir = pathlib.Path(workdir)
    results, seconds = [], {}
    for i, name in enumerate(names):
        start = time.monotonic()
        result = run_claim(name, config, workdir)
        seconds[name] = time.monotonic() - start
        results.append(result)
        log(
            f"[{i + 1}/{len(names)}] {name}: {base.verdict(result.holds)} -- {result.measurement} "
            f"({seconds[name]:.0f} s)"
        )
    text = report(results, seconds)
    (workdir / "claims.md").write_text(text, encoding="utf-8")
    common.write_csv(
        workdir / "claims.csv",
        [
            {
                "claim": r.name,
                "measurement": r.measurement,
                "verdict": base.verdict(r.holds),
                "seconds": round(seconds[r.name], 1),
            }
            for r in results
        ],
    )
    common.write_json(workdir / "claims.json", {r.name: {**r._asdict(), "seconds": seconds[r.name]} for r in results})
    return text
