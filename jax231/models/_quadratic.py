"""DeepOBS's ``quadratic_deep``: a noisy quadratic whose Hessian has a deep-learning-like spectrum.

The problem (Schneider, Balles & Hennig, "DeepOBS", ICLR 2019) is the loss

.. math::  \\ell(\\theta; x) = \\tfrac{1}{2} (\\theta - x)^\\top Q (\\theta - x), \\qquad
           Q = R^\\top \\mathrm{diag}(\\lambda) R,

over ``D = 100`` parameters started at :math:`\\theta_0 = \\mathbf{1}`, with data
:math:`x \\sim \\mathcal{N}(0, 0.6^2 I)`. DeepOBS draws, from one
``numpy.random.RandomState(42)`` in this order: 90 eigenvalues uniform in
``(0, 1)``, 10 uniform in ``(30, 60)`` (the bulk-and-outliers spectrum Sagun et
al. 2016 report for deep nets; condition number in the hundreds or more), then a
rotation ``R`` uniform (Haar) on ``SO(D)`` by the subgroup algorithm of Diaconis
& Shahshahani (1987). :func:`deep_quadratic_hessian` reproduces that draw step by
step (``tests/models/test_quadratic.py`` checks the spectrum and orthogonality).

As a :class:`~jax231.models.Model`, :func:`noisy_quadratic` outputs the residual
:math:`r = (\\theta - x) L` with :math:`L L^\\top = Q`, so that
``jax231.losses.residual_loss`` (:math:`\\tfrac12 \\|r\\|^2`) is the DeepOBS loss.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

from jax231.models import _helpers, _model
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["DeepQuadratic", "deep_quadratic_hessian", "haar_rotation", "noisy_quadratic"]


def haar_rotation(dim: int, rng: np.random.RandomState) -> np.ndarray:
    """A rotation uniform on ``SO(dim)`` by the subgroup algorithm, as DeepOBS draws it.

    Start from a uniform rotation of the plane; for ``d = 2 .. dim - 1`` embed the
    current ``R`` in ``d + 1`` dimensions, ``D = diag(1, R)``, draw ``v`` uniform on
    the sphere :math:`S^d` and apply the Householder reflection that maps
    :math:`e_1` to ``v``: :math:`R \\leftarrow D - 2 x (x^\\top D)` with
    :math:`x = (e_1 - v) / \\|e_1 - v\\|`. DeepOBS returns :math:`-R`.

    Args:
      dim: dimension (>= 2).
      rng: the NumPy random state to draw from (consumed as DeepOBS consumes it).

    Returns:
      A float64 ``(dim, dim)`` orthogonal matrix.
    """
    _helpers.check_positive_int("dim", dim)
    if dim < 2:
        _helpers.fail("dim", "an int >= 2", dim)
    t = 2 * np.pi * rng.uniform()
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v = v / np.sqrt(v.T @ v)
        e = np.concatenate([np.ones((1, 1)), np.zeros((d, 1))], axis=0)
        x = (e - v) / np.sqrt((e - v).T @ (e - v))
        embedded = np.block([[np.ones((1, 1)), np.zeros((1, d))], [np.zeros((d, 1)), rot]])
        rot = embedded - 2 * np.outer(x, x.T @ embedded)
    return -rot


class DeepQuadratic(NamedTuple):
    """The fixed parts of ``quadratic_deep``.

    Attributes:
      hessian: ``Q = R^T diag(eigenvalues) R``, float64 ``(D, D)``.
      eigenvalues: the drawn spectrum, in draw order (90 in (0, 1), then 10 in (30, 60)).
      rotation: ``R``.
    """

    hessian: np.ndarray
    eigenvalues: np.ndarray
    rotation: np.ndarray


def deep_quadratic_hessian(*, seed: int = 42, num_small: int = 90, num_large: int = 10) -> DeepQuadratic:
    """DeepOBS's ``quadratic_deep`` Hessian: ``num_small`` eigenvalues in (0, 1), ``num_large`` in (30, 60).

    Args:
      seed: seed of the ``RandomState`` (DeepOBS: 42).
      num_small: eigenvalues drawn uniform in ``(0, 1)`` (DeepOBS: 90).
      num_large: eigenvalues drawn uniform in ``(30, 60)`` (DeepOBS: 10).

    Returns:
      A :class:`DeepQuadratic` of dimension ``num_small + num_large``.
    """
    rng = np.random.RandomState(seed)
    eigenvalues = np.concatenate([rng.uniform(0.0, 1.0, num_small), rng.uniform(30.0, 60.0, num_large)])
    rotation = haar_rotation(eigenvalues.shape[0], rng)
    hessian = rotation.T @ np.diag(eigenvalues) @ rotation
    return DeepQuadratic(hessian=hessian, eigenvalues=eigenvalues, rotation=rotation)


def noisy_quadratic(*, hessian: ArrayLike, init_value: float = 1.0, num_classes: Optional[int] = None) -> _model.Model:
    """The noisy quadratic :math:`\\tfrac12 (\\theta - x)^\\top Q (\\theta - x)` as a model of its residual.

    ``apply`` returns :math:`r = (\\theta - x) L` (``(N, D)``) with
    :math:`L = R^\\top \\mathrm{diag}(\\sqrt{\\lambda})` from the eigendecomposition of
    ``Q``, so :math:`\\tfrac12 \\|r\\|^2` (``jax231.losses.residual_loss``) is the loss
    and its Hessian in :math:`\\theta` is ``Q``.

    Args:
      hessian: symmetric positive semi-definite ``(D, D)`` matrix ``Q``.
      init_value: every entry of :math:`\\theta_0` (DeepOBS: 1).
      num_classes: ignored (the uniform model API passes it); the output has ``D`` columns.

    Returns:
      ``Model(init, apply)``; params ``{'theta': (D,)}``, inputs ``x`` of shape ``(N, D)``.

    Raises:
      ValueError: for a non-square or non-symmetric ``hessian``, or inputs of another dimension.
    """
    del num_classes
    q = np.asarray(hessian, np.float64)
    if q.ndim != 2 or q.shape[0] != q.shape[1] or not np.allclose(q, q.T, atol=1e-10 * max(1.0, np.abs(q).max())):
        _helpers.fail("hessian", "a symmetric (D, D) matrix", None, got_text=f"shape {q.shape}")
    eigenvalues, vectors = np.linalg.eigh(q)
    factor = jnp.asarray(vectors * np.sqrt(np.clip(eigenvalues, 0.0, None)), jnp.float32)  # L, L L^T = Q
    dim = q.shape[0]

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        del rng  # deterministic start, as DeepOBS
        shape = _helpers.check_input_shape("noisy_quadratic", input_shape, rank=1, layout="(D,)")
        if shape[0] != dim:
            _helpers.fail(
                "noisy_quadratic input_shape", f"({dim},), the Hessian's dimension", None, got_text=str(shape)
            )
        return {"theta": jnp.full((dim,), init_value, jnp.float32)}, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        del train, rng
        x = jnp.asarray(x)
        _helpers.check_batch("noisy_quadratic", x, rank=2, layout="(N, D)", channels=dim)
        return (params["theta"] - x) @ factor, state

    return _model.Model(init_fn, apply_fn)
