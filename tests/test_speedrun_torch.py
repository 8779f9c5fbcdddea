"""The speedrun's PyTorch peer (benchmarks/speedrun_torch.py) against jax231's own pieces.

The peer is the reference the speedrun's accuracy is compared with, so its pieces are checked
against jax231's: the whitening filters (both from the patch PCA, written independently) and the
network's parameter count; and a tiny run of its command line."""

from __future__ import annotations

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is the bench extra's peer, not installed here")

from benchmarks import speedrun_torch  # noqa: E402
from experiments.speedrun import config as speedrun_config  # noqa: E402
from experiments.speedrun import experiment  # noqa: E402
from jax231 import models  # noqa: E402
from jax231.models import layers  # noqa: E402


def _images(n: int = 64) -> np.ndarray:
    return experiment.synthetic_cifar(n, 8)["train"]["image"]


def test_whitening_equals_jax231_patch_pca_up_to_sign():
    images = _images()
    peer = speedrun_torch.whitening_weights(speedrun_torch.to_torch(images), patch_size=2, eps=5e-4).numpy()
    ours = layers.whitening_filters(experiment.normalized(images), patch_size=2, eps=5e-4, stride=1)
    peer_hwio = peer.transpose(2, 3, 1, 0)  # OIHW -> HWIO, the same (row, column, channel) patch order
    d = ours.shape[-1] // 2
    for j in range(d):  # each eigenvector is unique up to its sign (distinct eigenvalues)
        a, b = ours[..., j].ravel(), peer_hwio[..., j].ravel()
        sign = np.sign(a @ b)
        # float32 filters from float64 eigendecompositions of the same matrix: 1e-3 relative covers
        # the float32 normalisation of the images on the two sides (torch vs NumPy rounding)
        np.testing.assert_allclose(sign * b, a, rtol=1e-3, atol=1e-3 * np.abs(a).max())
        np.testing.assert_allclose(-sign * peer_hwio[..., d + j].ravel(), a, rtol=1e-3, atol=1e-3 * np.abs(a).max())


def test_network_has_jax231s_trainable_parameter_count():
    config = speedrun_config.get_config("tiny")
    images = _images()
    whitening = layers.whitening_filters(experiment.normalized(images), patch_size=2)
    params, _ = models.airbench_net(whitening, widths=tuple(config.widths)).init(jax.random.PRNGKey(0), (1, 32, 32, 3))
    ours = sum(int(np.size(p)) for p in jax.tree_util.tree_leaves(params))
    net = speedrun_torch.make_net(config, speedrun_torch.whitening_weights(speedrun_torch.to_torch(images), 2, 5e-4))
    # jax231 holds no batch-norm scale (frozen at 1, not a parameter); the peer's are frozen tensors
    frozen_scales = sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert sum(p.numel() for p in net.parameters()) - frozen_scales == ours


def test_tiny_run_prints_the_table(capsys):
    speedrun_torch.main(["--preset", "tiny", "--seeds", "0", "--threads", "1", "--epochs", "1"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 0 |"))
    plain, tta = (float(cell.strip().rstrip("%")) for cell in row.split("|")[2:4])
    assert 0.0 <= plain <= 100.0 and 0.0 <= tta <= 100.0
    assert "mean over 1 seed(s)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "nope"], "--preset: expected one of"),
        (["--preset", "gpu94_muon"], "optimizer 'nesterov'"),
        (["--seeds", "a"], "--seeds: expected a comma list of ints"),
        (["--epochs", "-1"], "expected values >= 0"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        speedrun_torch.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
