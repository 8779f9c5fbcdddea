"""End-to-end smoke test of experiments/generative on its tiny preset, and its bad-input exits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from experiments._common import UsageError
from experiments.generative import config as generative_config
from experiments.generative import experiment
from experiments.generative import figures
from tests.reliability import cli_worker


@pytest.mark.slow
def test_tiny_run_writes_every_output(tmp_path):
    config = generative_config.get_config("tiny")
    result = experiment.run(config, tmp_path)
    for name in (
        "results.md",
        "results.csv",
        "results.json",
        "report.md",
        "training_curves.png",
        "interpolation_vae.png",
        "interpolation_gan.png",
        "reconstructions_autoencoder.png",
        *(f"samples_{m}.png" for m in ("baseline", "vae", "gan", "pixelcnn", "pixelrnn")),
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = {row["model"]: row for row in result.rows}
    assert set(rows) == {"real test images", *experiment.MODELS}
    for name in ("baseline", "vae", "pixelcnn", "pixelrnn"):
        # A likelihood in bits/dim of 17-level pixels lies in (0, ~log2(17) + slack) even barely trained.
        assert 0 < rows[name]["test_bpd"] < 2 * math.log2(17), rows[name]
    assert rows["vae"]["test_bpd_elbo"] >= rows["vae"]["test_bpd"] - 0.05  # the bound is the looser one
    for name in ("baseline", "vae", "gan", "pixelcnn", "pixelrnn"):
        assert 0 <= rows[name]["mean_confidence"] <= 1 and 0 <= rows[name]["class_entropy"] <= math.log(10) + 1e-6
        assert result.samples[name].shape == (12, 8, 8, 1)
    # Pixel-by-pixel samples take the dataset's 17 levels only.
    levels = result.samples["pixelcnn"] * 16
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result.rows))


@pytest.mark.parametrize(
    "field,value", [("vae_latent_dim", 0), ("gan_latent_dim", 0), ("temperature", 0.0), ("models", "vae,flow")]
)
def test_bad_config_is_a_usage_error(field, value):
    config = generative_config.get_config("tiny")
    config[field] = value
    with pytest.raises(UsageError, match=rf"^--config.{field}: "):
        experiment.validate_config(config)


@pytest.mark.parametrize("flag", ["--config.vae_latent_dim=0", "--config.temperature=-1"])
def test_cli_bad_input_exits_2_with_one_line(flag, tmp_path):
    # In this process (no JAX import per case); the real process boundary is tests/reliability/test_cli.py's.
    out = cli_worker.run_in_process("experiments.generative.main", [f"--workdir={tmp_path}", flag])
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    lines = [line for line in out["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --config."), out["stderr"]


def test_tile_places_images_row_major_with_gaps():
    images = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1) / 2.0  # values 0, 0.5, 1
    canvas = figures.tile(images, 2, fill=0.25)[..., 0]
    expected = np.array(
        [
            [0.25, 0.25, 0.25, 0.25, 0.25],
            [0.25, 0.0, 0.25, 0.5, 0.25],
            [0.25, 0.25, 0.25, 0.25, 0.25],
            [0.25, 1.0, 0.25, 0.25, 0.25],
            [0.25, 0.25, 0.25, 0.25, 0.25],
        ]
    )
    np.testing.assert_array_equal(canvas, expected)


def test_downsample_matches_a_loop_over_blocks():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 8, 4, 3)) / 255.0
    got = experiment.downsample(images, 4, 256)
    expected = np.zeros((2, 2, 1, 3))
    for n, i, j, c in np.ndindex(expected.shape):  # float64 reference: block mean, rounded to a level
        expected[n, i, j, c] = round(255 * images[n, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4, c].mean()) / 255
    np.testing.assert_allclose(got, expected, atol=1e-7)  # float32 of the same level values
    assert got.dtype == np.float32 and got.shape == (2, 2, 1, 3)
    np.testing.assert_array_equal(experiment.downsample(images, 1, 256), images.astype(np.float32))
    with pytest.raises(UsageError, match=r"^--config.downsample: "):
        experiment.downsample(images, 3, 256)


@pytest.mark.parametrize(
    "field,value", [("downsample", 0), ("train_size", -1), ("test_size", -2), ("conv_impl", "fft")]
)
def test_bad_data_and_conv_fields_are_usage_errors(field, value):
    config = generative_config.get_config("tiny")
    config[field] = value
    with pytest.raises(UsageError, match=rf"^--config.{field}: "):
        experiment.validate_config(config)


def test_cifar8_preset_validates():
    config = generative_config.get_config("cifar8")
    assert experiment.validate_config(config) == ("baseline", "pixelcnn", "vae")
    assert (config.dataset, config.levels, config.downsample) == ("cifar10_shared", 256, 4)
