"""Shampoo under ``run_sweep``: K vmapped members finish and equal K separate ``fit`` runs.

Regression test of a deadlock (issue 11): with one ``eigh`` per Kronecker
factor, the vmapped sweep step ran several batched LAPACK ``eigh`` calls at
once; each spread its batch over XLA's intra-op pool and waited for it, and on
a 2-core machine the two pool threads waited on each other forever. This
exact configuration (MLP 16 -> 32 -> 32 -> 10, 3 members, 3 full-batch steps)
hung there (killed after 120 s, 8 CPU-s); with ``jax231.optimizers.sequential_eigh`` (a loop
of unbatched ``eigh`` under vmap) the test takes ~20 s. The sweep runs in a
subprocess with a timeout, so a regression fails the test instead of hanging CI.
Caveat: this size did not catch an intermediate attempt (batched ``eigh`` calls
chained one after the other), which hung only at the MNIST-1D MLP's size (40 ->
100 -> 100 -> 10, 5 steps); there the members and the ``fit`` runs differ by up to
0.05 (the factors' near-null directions are amplified by eps^{-1/4}), too loose
a check for this test, so it was verified by hand.
"""

from __future__ import annotations

import json
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import optimizers as jopt
from tests import test_utils

TIMEOUT_S = 300.0  # ~15 s wall on a loaded 2-core machine when it works; a deadlock never ends

# vmap batches the K members' eigh and matrix products (another LAPACK batch and
# summation order than a single run). Parameters are O(1); after 3 float32 steps
# most leaves agree to ~1e-6, the head's to 6e-5 (measured): its left factor
# (32 x 32, rank <= 30) has eigenvalues at the eps = 1e-6 floor, where eigh's
# roundoff (~1e-7 of the largest eigenvalue) is amplified by x^{-1/4}. 3e-4
# leaves room while catching a member mix-up (another seed or learning rate
# moves the parameters by O(1e-2) or more).
ATOL = 3e-4

CODE = """
import json
import numpy as np
import jax
from jax231 import models, optimizers, parallel, training

rng = np.random.default_rng(0)
train = {"image": rng.normal(size=(64, 16)).astype(np.float32), "label": rng.integers(0, 10, 64).astype(np.int32)}
model = models.get("mlp", hidden_sizes=(32, 32), num_classes=10)
seeds, lrs = [0, 0, 1], [0.1, 0.03, 0.1]
result = parallel.run_sweep(
    model, "shampoo", train=train, seeds=np.asarray(seeds), num_steps=3,
    hyperparams={"learning_rate": np.asarray(lrs, np.float32)}, explosion_factor=None,
)
errors = []
for k, (seed, lr) in enumerate(zip(seeds, lrs)):
    ref = training.fit(
        model, optimizers.shampoo(lr), train=train, seed=seed, num_steps=3,
        check_initial_loss=False, explosion_factor=None,
    )
    member = parallel.tree_index(result.state, k)
    diffs = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))), member.params, ref.state.params)
    errors.append(max(jax.tree_util.tree_leaves(diffs)))
print(json.dumps({"errors": errors, "status": list(result.status)}))
"""


def test_shampoo_sweep_of_3_members_finishes_and_equals_3_fit_runs():
    try:
        out = test_utils.run_with_devices(CODE, num_devices=1, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run_sweep with shampoo did not finish in {TIMEOUT_S:.0f} s (the batched-eigh deadlock?)")
    report = json.loads(out.strip().splitlines()[-1])
    assert report["status"] == ["completed"] * 3
    assert max(report["errors"]) < ATOL, report["errors"]  # largest |member - fit| parameter difference


def test_vmapped_sequential_eigh_equals_one_eigh_per_matrix():
    rng = np.random.default_rng(3)
    factors = rng.normal(size=(3, 5, 4)).astype(np.float32)  # rank 4 < 5: one eigenvalue near 0
    mats = jnp.asarray(factors @ np.swapaxes(factors, 1, 2))
    values, vectors = jax.jit(jax.vmap(jopt.sequential_eigh))(mats)
    for k in range(3):
        expected_values, expected_vectors = jnp.linalg.eigh(mats[k])
        # the same LAPACK routine on the same matrix (unbatched both ways): equal to roundoff
        np.testing.assert_allclose(values[k], expected_values, rtol=1e-5, atol=1e-5)
        # eigenvectors up to sign: compare the projectors v v^T
        np.testing.assert_allclose(
            np.einsum("ij,kj->jik", vectors[k], vectors[k]),
            np.einsum("ij,kj->jik", expected_vectors, expected_vectors),
            atol=1e-4,
        )
