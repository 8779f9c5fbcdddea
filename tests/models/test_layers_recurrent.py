"""Recurrent cells against flax.linen LSTMCell / GRUCell and float64 NumPy transcriptions."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from jax231.models import layers as L

N, T, D, H = 2, 3, 3, 4
# float32 against flax: the same few matmuls and nonlinearities, values O(1).
RTOL32, ATOL32 = 1e-5, 1e-5


def _randn(seed: int, *shape: int, scale: float = 0.5) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _params(cell: str) -> dict[str, np.ndarray]:
    """Random parameters with nonzero biases (init_rnn's are zero, which would hide bias bugs)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    params = {"wx": _randn(1, D, gates * H), "wh": _randn(2, H, gates * H)}
    if cell == "gru":
        params.update(bx=_randn(3, gates * H), bh=_randn(4, gates * H))
    else:
        params["b"] = _randn(3, gates * H)
    return params


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_rnn_step(p, h, x):
    return np.tanh(x @ p["wx"] + h @ p["wh"] + p["b"])


def _np_lstm_step(p, h, c, x):
    a = x @ p["wx"] + h @ p["wh"] + p["b"]
    i, f, o, g = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), _sigmoid(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
    c = f * c + i * g
    return o * np.tanh(c), c


def _np_gru_step(p, h, x):
    ax, ah = x @ p["wx"] + p["bx"], h @ p["wh"] + p["bh"]
    r = _sigmoid(ax[:, :H] + ah[:, :H])
    z = _sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    return (1 - z) * n + z * h


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


class CellTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.x, self.h, self.c = _randn(5, N, D, scale=1.0), _randn(6, N, H), _randn(7, N, H)

    @chex.variants(with_jit=True, without_jit=True)
    def test_steps_match_numpy_transcriptions(self):
        x, h, c = _f64((self.x, self.h, self.c))
        with jax.enable_x64(True):
            rnn_h = self.variant(L.rnn_step)(_f64(_params("rnn")), h, x)
            lstm_h, lstm_c = self.variant(L.lstm_step)(_f64(_params("lstm")), (h, c), x)
            gru_h = self.variant(L.gru_step)(_f64(_params("gru")), h, x)
        chex.assert_shape([rnn_h, lstm_h, lstm_c, gru_h], (N, H))
        # float64 on both sides: rounding only.
        np.testing.assert_allclose(rnn_h, _np_rnn_step(_f64(_params("rnn")), h, x), rtol=1e-12, atol=1e-12)
        ref_h, ref_c = _np_lstm_step(_f64(_params("lstm")), h, c, x)
        np.testing.assert_allclose(lstm_h, ref_h, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lstm_c, ref_c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gru_h, _np_gru_step(_f64(_params("gru")), h, x), rtol=1e-12, atol=1e-12)

    def test_lstm_step_matches_flax_cell(self):
        p = _params("lstm")
        split = lambda a: dict(zip("ifog", np.split(a, 4, axis=-1)))  # our order: i, f, o, g
        wx, wh, b = split(p["wx"]), split(p["wh"]), split(p["b"])
        flax_params = {f"i{g}": {"kernel": wx[g]} for g in "ifgo"}
        flax_params.update({f"h{g}": {"kernel": wh[g], "bias": b[g]} for g in "ifgo"})
        (ref_c, ref_h), _ = nn.LSTMCell(H).apply({"params": flax_params}, (self.c, self.h), self.x)
        h, c = L.lstm_step(p, (self.h, self.c), self.x)
        chex.assert_trees_all_close((h, c), (ref_h, ref_c), rtol=RTOL32, atol=ATOL32)

    def test_gru_step_matches_flax_cell(self):
        p = _params("gru")
        # flax's GRUCell has no hidden biases for r and z: zero them in ours.
        p["bh"][: 2 * H] = 0.0
        split = lambda a: dict(zip("rzn", np.split(a, 3, axis=-1)))
        wx, wh, bx, bh = split(p["wx"]), split(p["wh"]), split(p["bx"]), split(p["bh"])
        flax_params = {f"i{g}": {"kernel": wx[g], "bias": bx[g]} for g in "rzn"}
        flax_params.update(hr={"kernel": wh["r"]}, hz={"kernel": wh["z"]}, hn={"kernel": wh["n"], "bias": bh["n"]})
        ref_h, _ = nn.GRUCell(H).apply({"params": flax_params}, self.h, self.x)
        chex.assert_trees_all_close(L.gru_step(p, self.h, self.x), ref_h, rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(
        ("rnn", "rnn", lambda p, h, c, x: L.rnn_step(p, h, x)),
        ("lstm", "lstm", lambda p, h, c, x: L.lstm_step(p, (h, c), x)),
        ("gru", "gru", lambda p, h, c, x: L.gru_step(p, h, x)),
    )
    def test_gradient_check(self, cell, step):
        err = gradcheck.check_grads(step, _params(cell), self.h, self.c, self.x, argnums=(0, 1, 3))
        self.assertLess(err, 1e-7)

    @parameterized.named_parameters(
        ("wx", {"wx": np.ones((D + 1, H))}, (N, H), (N, D), r"params\['wx'\]"),
        ("wh", {"wh": np.ones((H, 2 * H))}, (N, H), (N, D), r"params\['wh'\]"),
        ("b", {"b": np.ones((H + 1,))}, (N, H), (N, D), r"params\['b'\]"),
        ("h_batch", {}, (N + 1, H), (N, D), "^h: "),
        ("x_rank", {}, (N, H), (N, T, D), "^x: "),
    )
    def test_bad_shapes_raise(self, overrides, h_shape, x_shape, name):
        params = {**_params("rnn"), **overrides}
        with self.assertRaisesRegex(ValueError, name):
            L.rnn_step(params, jnp.ones(h_shape), jnp.ones(x_shape))


class SequenceTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.xs, self.h0, self.c0 = _randn(5, N, T, D, scale=1.0), _randn(6, N, H), _randn(7, N, H)

    @chex.variants(with_jit=True, without_jit=True)
    def test_scans_match_python_loops_of_steps(self):
        hs_rnn = self.variant(L.rnn)(_params("rnn"), self.xs, self.h0)
        hs_lstm, (h_t, c_t) = self.variant(L.lstm)(_params("lstm"), self.xs, self.h0, self.c0)
        hs_gru = self.variant(L.gru)(_params("gru"), self.xs, self.h0)
        chex.assert_shape([hs_rnn, hs_lstm, hs_gru], (N, T, H))
        h_r, h_l, c_l, h_g = self.h0, self.h0, self.c0, self.h0
        for t in range(T):
            h_r = L.rnn_step(_params("rnn"), h_r, self.xs[:, t])
            h_l, c_l = L.lstm_step(_params("lstm"), (h_l, c_l), self.xs[:, t])
            h_g = L.gru_step(_params("gru"), h_g, self.xs[:, t])
            chex.assert_trees_all_close(
                (hs_rnn[:, t], hs_lstm[:, t], hs_gru[:, t]), (h_r, h_l, h_g), rtol=RTOL32, atol=ATOL32
            )
        chex.assert_trees_all_close((h_t, c_t), (h_l, c_l), rtol=RTOL32, atol=ATOL32)

    def test_lstm_sequence_matches_flax_rnn(self):
        p = _params("lstm")
        split = lambda a: dict(zip("ifog", np.split(a, 4, axis=-1)))
        wx, wh, b = split(p["wx"]), split(p["wh"]), split(p["b"])
        cell_params = {f"i{g}": {"kernel": wx[g]} for g in "ifgo"}
        cell_params.update({f"h{g}": {"kernel": wh[g], "bias": b[g]} for g in "ifgo"})
        ref = nn.RNN(nn.LSTMCell(H)).apply(
            {"params": {"cell": cell_params}}, self.xs, initial_carry=(np.zeros((N, H), np.float32), self.h0)
        )
        hs, _ = L.lstm(p, self.xs, self.h0)  # c0=None means zeros
        chex.assert_trees_all_close(hs, ref, rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(
        ("rnn", "rnn", lambda p, xs, h0, c0: L.rnn(p, xs, h0)),
        ("lstm", "lstm", lambda p, xs, h0, c0: L.lstm(p, xs, h0, c0)),
        ("gru", "gru", lambda p, xs, h0, c0: L.gru(p, xs, h0)),
    )
    def test_gradient_check_through_time(self, cell, run):
        err = gradcheck.check_grads(run, _params(cell), self.xs, self.h0, self.c0, argnums=(0, 1, 2))
        self.assertLess(err, 1e-7)

    def test_init_rnn_shapes(self):
        for cell, gates in (("rnn", 1), ("lstm", 4), ("gru", 3)):
            params = L.init_rnn(jax.random.key(0), D, H, cell=cell)
            chex.assert_shape([params["wx"], params["wh"]], [(D, gates * H), (H, gates * H)])
            biases = ("bx", "bh") if cell == "gru" else ("b",)
            self.assertEqual(set(params), {"wx", "wh", *biases})
            for name in biases:
                chex.assert_shape(params[name], (gates * H,))
        b = L.init_rnn(jax.random.key(0), D, H, cell="lstm", forget_bias=1.0)["b"]
        np.testing.assert_array_equal(b, np.repeat([0.0, 1.0, 0.0, 0.0], H))
        with self.assertRaisesRegex(ValueError, "^cell: "):
            L.init_rnn(jax.random.key(0), D, H, cell="transformer")

    def test_bad_sequence_shapes_raise(self):
        with self.assertRaisesRegex(ValueError, "^xs: "):
            L.rnn(_params("rnn"), self.xs[:, 0], self.h0)
        with self.assertRaisesRegex(ValueError, "^h0: "):
            L.gru(_params("gru"), self.xs, self.h0[:1])
        with self.assertRaisesRegex(ValueError, "^c0: "):
            L.lstm(_params("lstm"), self.xs, self.h0, self.c0[:, :2])


if __name__ == "__main__":
    absltest.main()
