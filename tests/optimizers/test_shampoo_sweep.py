"""Shampoo under ``run_sweep``: K vmapped members finish and equal K separate ``fit`` runs.

Regression test of a deadlock (issue 11): with one ``eigh`` per Kronecker
factor, the vmapped sweep step ran several batched LAPACK ``eigh`` calls at
once; each spread its batch over XLA's intra-op pool and waited for it, and on
a 2-core machine the two pool threads waited on each other forever. This
exact configuration (MLP 16 -> 32 -> 32 -> 10, 3 members, 3 full-batch steps)
hung there (killed after 90 s, 8 CPU-s); with the batched ``eigh`` calls of
``jax231.optimizers.inverse_roots`` run one at a time it finishes in ~9 s. The sweep runs in a
subprocess with a timeout, so a regression fails the test instead of hanging CI.
"""

from __future__ import annotations

import json
import subprocess

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


def test_inverse_roots_of_mixed_sides_equal_float64_numpy_roots():
    rng = np.random.default_rng(3)
    # sides 5, 2, 4, 2 (three eigh calls, in order); the side-4 one has rank 2 (eigenvalues at the eps floor)
    factors = [rng.normal(size=(n, r)) for n, r in [(5, 5), (2, 2), (4, 2), (2, 1)]]
    mats = [f @ f.T for f in factors]
    eps = 1e-2
    roots = jopt.inverse_roots([jnp.asarray(a, jnp.float32) for a in mats], eps)
    for a, root in zip(mats, roots):
        values, vectors = np.linalg.eigh(a + eps * np.eye(len(a)))
        expected = (vectors * values ** (-1.0 / 4)) @ vectors.T
        # float32 eigh: ~1e-6 relative to the largest entry, eps^{-1/4} ~ 3 amplifies the floor
        np.testing.assert_allclose(np.asarray(root), expected, rtol=1e-4, atol=1e-4)
