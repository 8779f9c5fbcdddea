"""Losses against optax, scikit-learn and float64 NumPy transcriptions of the course's naive loops."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import sklearn.metrics
from absl.testing import absltest, parameterized

from jax231 import gradcheck, losses

N, C = 6, 5


def _randn(seed: int, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


LOGITS = _randn(0, N, C, scale=2.0)
LABELS = np.array([0, 1, 2, 3, 4, 2])


def _svm_naive(scores, y, delta, squared):
    """The course's svm_loss_naive loop (per example), in float64."""
    out = np.zeros(len(y))
    for i in range(len(y)):
        for j in range(scores.shape[1]):
            if j == y[i]:
                continue
            margin = scores[i, j] - scores[i, y[i]] + delta
            if margin > 0:
                out[i] += margin**2 if squared else margin
    return out


class SvmSoftmaxTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("hinge", 1.0, False), ("margin_half", 0.5, False), ("squared", 1.0, True))
    def test_svm_matches_naive_loop(self, margin, squared):
        loss = self.variant(functools.partial(losses.svm_loss, margin=margin, squared=squared))
        out = loss(logits=LOGITS, labels=LABELS)
        chex.assert_shape(out, (N,))
        # float32 against float64 NumPy: a few ulps of values O(10).
        np.testing.assert_allclose(
            out, _svm_naive(LOGITS.astype(np.float64), LABELS, margin, squared), rtol=1e-5, atol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_softmax_matches_optax(self):
        out = self.variant(losses.softmax_cross_entropy)(logits=LOGITS, labels=LABELS)
        chex.assert_shape(out, (N,))
        ref = optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS)
        ref_one_hot = optax.softmax_cross_entropy(LOGITS, jax.nn.one_hot(LABELS, C))
        chex.assert_trees_all_close(out, ref, rtol=1e-6, atol=1e-6)  # float32, same formula
        chex.assert_trees_all_close(out, ref_one_hot, rtol=1e-6, atol=1e-6)

    def test_softmax_is_stable_for_huge_logits(self):
        logits = jnp.array([[1000.0, 0.0, -1000.0], [5000.0, 5000.0, 5000.0]])
        out = losses.softmax_cross_entropy(logits=logits, labels=jnp.array([1, 0]))
        chex.assert_tree_all_finite(out)
        np.testing.assert_allclose(out, [1000.0, np.log(3)], rtol=1e-6)

    def test_losses_at_small_weights_match_the_notes(self):
        # A linear classifier with tiny weights gives scores ~ 0: SVM ~ (C - 1)·Δ, softmax ~ log C.
        num_classes = 10
        x = _randn(1, 500, 3072)
        w = 1e-4 * _randn(2, 3072, num_classes)
        labels = np.random.default_rng(3).integers(0, num_classes, 500)
        scores = x @ w
        svm = losses.mean_loss(losses.svm_loss)(logits=scores, labels=labels)
        softmax = losses.mean_loss(losses.softmax_cross_entropy)(logits=scores, labels=labels)
        # Scores have std 1e-4·sqrt(3072) ~ 0.0055: both losses are within ~1% of the limit.
        np.testing.assert_allclose(svm, (num_classes - 1) * 1.0, rtol=0.01)
        np.testing.assert_allclose(softmax, np.log(num_classes), rtol=0.01)

    def test_mean_loss_and_leading_batch_shape(self):
        mean_svm = losses.mean_loss(losses.svm_loss)
        self.assertEqual(mean_svm.__name__, "svm_loss")
        np.testing.assert_allclose(
            mean_svm(logits=LOGITS, labels=LABELS), np.mean(losses.svm_loss(logits=LOGITS, labels=LABELS)), rtol=1e-6
        )
        out = losses.softmax_cross_entropy(logits=LOGITS.reshape(2, 3, C), labels=LABELS.reshape(2, 3))
        chex.assert_shape(out, (2, 3))
        np.testing.assert_allclose(
            out.reshape(-1), losses.softmax_cross_entropy(logits=LOGITS, labels=LABELS), rtol=1e-6
        )

    @parameterized.named_parameters(
        ("svm", losses.svm_loss),
        ("squared_svm", functools.partial(losses.svm_loss, squared=True)),
        ("softmax", losses.softmax_cross_entropy),
    )
    def test_gradient_check(self, loss):
        # Every SVM margin of these logits is >= 0.05 away from the kink at 0.
        margins = LOGITS - LOGITS[np.arange(N), LABELS][:, None] + 1.0
        self.assertGreater(np.min(np.abs(margins)), 0.05)
        err = gradcheck.check_grads(lambda s: loss(logits=s, labels=LABELS), LOGITS)
        self.assertLess(err, 1e-7)

    def test_gradient_check_of_a_regularised_linear_classifier(self):
        x, w = _randn(4, 8, 6), _randn(5, 6, C, scale=0.1)

        def objective(params):
            scores = x @ params["w"] + params["b"]
            data = losses.mean_loss(losses.softmax_cross_entropy)(
                logits=scores, labels=LABELS[[0, 1, 2, 3, 4, 2, 1, 0]]
            )
            return data + losses.elastic_net_penalty(params, l1=0.01, l2=0.1)

        err = gradcheck.check_grads(objective, {"w": w, "b": _randn(6, C)})
        # |w| entries are >= ~1e-3 so the L1 kink at 0 is far from h = 1e-5.
        self.assertLess(err, 1e-7)

    @parameterized.named_parameters(
        ("labels_shape", LOGITS, LABELS[:4], "`labels` must have shape"),
        ("labels_too_big", LOGITS, np.array([0, 1, 2, 3, 4, 5]), r"`labels` must lie in \[0, 5\)"),
        ("labels_negative", LOGITS, np.array([0, 1, 2, 3, 4, -1]), r"`labels` must lie in \[0, 5\)"),
        ("float_labels", LOGITS, LABELS.astype(np.float32), "integer"),
        ("scalar_logits", np.float32(1.0), np.int32(0), "`logits`"),
    )
    def test_bad_input_raises(self, logits, labels, message):
        for loss in (losses.svm_loss, losses.softmax_cross_entropy, losses.accuracy):
            with self.assertRaisesRegex(ValueError, message):
                loss(logits=logits, labels=labels)

    def test_labels_closed_over_under_jit_are_still_checked(self):
        with self.assertRaisesRegex(ValueError, "must lie in"):
            jax.jit(lambda s: losses.svm_loss(logits=s, labels=np.full(N, 7)))(LOGITS)

    def test_keyword_only(self):
        with self.assertRaises(TypeError):
            losses.svm_loss(LOGITS, LABELS)  # pylint: disable=too-many-function-args


class AccuracyTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_sklearn(self):
        acc = self.variant(losses.accuracy)(logits=LOGITS, labels=LABELS)
        chex.assert_shape(acc, ())
        expected = sklearn.metrics.accuracy_score(LABELS, np.argmax(LOGITS, axis=1))
        self.assertAlmostEqual(float(acc), expected, places=6)
        self.assertAlmostEqual(float(losses.accuracy(logits=jax.nn.one_hot(LABELS, C), labels=LABELS)), 1.0)


PARAMS = {
    "conv1": {"w": np.array([[1.0, -2.0], [3.0, 0.5]], np.float32), "b": np.array([10.0, 10.0], np.float32)},
    "bn1": {"gamma": np.array([5.0, 5.0], np.float32), "beta": np.array([7.0], np.float32)},
    "flax_dense": {"kernel": np.array([-1.0, 2.0], np.float32), "bias": np.array([9.0], np.float32)},
    "flax_norm": {"scale": np.array([4.0], np.float32)},
    "gru": {"wx": np.array([2.0], np.float32), "bx": np.array([8.0], np.float32)},
    "step": np.int32(3),
}
DECAYED = [np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([-1.0, 2.0]), np.array([2.0])]
EVERY_FLOAT = DECAYED + [np.array([10.0, 10.0, 5.0, 5.0, 7.0, 9.0, 4.0, 8.0])]


class PenaltyTest(parameterized.TestCase):
    def test_values_match_numpy(self):
        sq = sum(np.sum(a**2) for a in DECAYED)
        ab = sum(np.sum(np.abs(a)) for a in DECAYED)
        np.testing.assert_allclose(losses.l2_penalty(PARAMS, strength=0.3), 0.5 * 0.3 * sq, rtol=1e-6)
        np.testing.assert_allclose(losses.l1_penalty(PARAMS, strength=0.3), 0.3 * ab, rtol=1e-6)
        np.testing.assert_allclose(losses.elastic_net_penalty(PARAMS, l1=0.2, l2=0.4), 0.2 * ab + 0.2 * sq, rtol=1e-6)
        sq_all = sum(np.sum(a**2) for a in EVERY_FLOAT)
        np.testing.assert_allclose(losses.l2_penalty(PARAMS, exclude=None), 0.5 * sq_all, rtol=1e-6)

    def test_custom_exclude_predicate_sees_key_paths(self):
        seen = []

        def only_conv(path):
            seen.append(path)
            return path[0] != "conv1"

        np.testing.assert_allclose(losses.l1_penalty(PARAMS, exclude=only_conv), 1 + 2 + 3 + 0.5 + 20, rtol=1e-6)
        self.assertIn(("conv1", "w"), seen)
        self.assertIn(("flax_dense", "kernel"), seen)

    def test_decay_mask_and_gradient_match_optax_weight_decay(self):
        mask = losses.decay_mask(PARAMS)
        self.assertEqual(mask["conv1"], {"w": True, "b": False})
        self.assertEqual(mask["flax_dense"], {"kernel": True, "bias": False})
        self.assertEqual(mask["flax_norm"], {"scale": False})
        self.assertEqual(mask["gru"], {"wx": True, "bx": False})
        self.assertFalse(mask["step"])
        float_params = {k: v for k, v in PARAMS.items() if k != "step"}
        float_mask = losses.decay_mask(float_params)
        # d/dw of ½·λ·Σw² over the masked leaves is optax's masked weight decay λ·w.
        grads = jax.grad(lambda p: losses.l2_penalty(p, strength=0.7))(float_params)
        decay = optax.add_decayed_weights(0.7, mask=float_mask)
        updates, _ = decay.update(
            jax.tree_util.tree_map(jnp.zeros_like, float_params), decay.init(float_params), float_params
        )
        chex.assert_trees_all_close(grads, updates, rtol=1e-6, atol=0)

    def test_empty_and_all_excluded(self):
        self.assertEqual(float(losses.l2_penalty({})), 0.0)
        self.assertEqual(float(losses.l2_penalty({"b": jnp.ones(3)})), 0.0)


if __name__ == "__main__":
    absltest.main()
