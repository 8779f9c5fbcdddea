"""Train/eval steps against optax driven by hand and float64 NumPy transcriptions."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import training
from tests import test_utils
from tests.training import toy

OPTIMIZERS = [  # (name, factory): every rule meets the same step
    ("sgd", lambda: optax.sgd(0.1)),
    ("momentum", lambda: optax.sgd(0.1, momentum=0.9)),
    ("adam", lambda: optax.adam(1e-2)),
    # Backtracking instead of optax's default zoom line search: same extras
    # (value, grad, value_fn), a fraction of the compile time.
    (
        "lbfgs",
        lambda: optax.lbfgs(
            linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=10, store_grad=True)
        ),
    ),
]
MODELS = [
    ("linear", lambda: toy.linear()),
    ("mlp_bn_dropout", lambda: toy.mlp(drop_rate=0.2, batch_norm=True)),
]


def _state(model, optimizer, data, seed=0):
    return training.create_train_state(
        model, optimizer, rng=jax.random.PRNGKey(seed), input_shape=data["image"].shape[1:]
    )


def _np_softmax_xent(x, w, b, y):
    """float64 transcription of the notes: L = mean_i -log softmax(x_i W + b)_{y_i}, dL/dW, dL/db."""
    x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
    s = x @ w + b
    s = s - s.max(1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    n = x.shape[0]
    loss = -np.log(p[np.arange(n), y]).mean()
    dscores = p.copy()
    dscores[np.arange(n), y] -= 1
    dscores /= n
    return loss, x.T @ dscores, dscores.sum(0)


def test_sgd_step_matches_numpy_float64():
    data = toy.blobs(24)
    model, lr = toy.linear(), 0.5
    state = _state(model, optax.sgd(lr), data)
    new, metrics = jax.jit(training.make_train_step(model, optax.sgd(lr)))(state, data)
    w, b = state.params["dense"]["w"], state.params["dense"]["b"]
    x = data["image"].reshape(24, -1)
    loss, dw, db = _np_softmax_xent(x, w, b, data["label"])
    # float32 forward/backward on O(1) values: 1e-5 relative error is ~100 ulp.
    assert test_utils.rel_error(metrics["loss"], loss) < 1e-5
    assert test_utils.rel_error(new.params["dense"]["w"], w - lr * dw) < 1e-5
    assert test_utils.rel_error(new.params["dense"]["b"], b - lr * db) < 1e-5
    grad_norm = np.sqrt((dw**2).sum() + (db**2).sum())
    param_norm = np.sqrt((np.asarray(w, np.float64) ** 2).sum())  # b == 0 at init
    assert test_utils.rel_error(metrics["grad_norm"], grad_norm) < 1e-5
    assert test_utils.rel_error(metrics["param_norm"], param_norm) < 1e-5
    assert test_utils.rel_error(metrics["update_norm"], lr * grad_norm) < 1e-5
    assert test_utils.rel_error(metrics["update_ratio"], lr * grad_norm / param_norm) < 1e-5
    acc = (np.argmax(x @ np.asarray(w) + np.asarray(b), 1) == data["label"]).mean()
    np.testing.assert_allclose(metrics["accuracy"], acc, rtol=0, atol=1e-7)
    assert int(new.step) == 1 and new.step.dtype == jnp.int32


CASES = [
    (o, m) for o in OPTIMIZERS for m in MODELS if not (o[0] == "lbfgs" and m[0] != "linear")
]  # L-BFGS's line search is slow to compile: once


@pytest.mark.parametrize("opt,model", CASES, ids=[f"{m[0]}-{o[0]}" for o, m in CASES])
def test_step_matches_optax_by_hand(opt, model):
    """Two steps equal value_and_grad + optax.update + apply_updates written out, with fold_in keys."""
    data = toy.blobs(16)
    model, opt = model[1](), opt[1]()
    state = _state(model, opt, data)
    step = jax.jit(training.make_train_step(model, opt))

    @jax.jit
    def by_hand(params, model_state, opt_state, rng):
        def f(p):
            logits, new_ms = model.apply(p, model_state, data["image"], train=True, rng=rng)
            return optax.softmax_cross_entropy_with_integer_labels(logits, data["label"]).mean(), new_ms

        (value, new_ms), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params, value=value, grad=grads, value_fn=lambda p: f(p)[0])
        return optax.apply_updates(params, updates), new_ms, opt_state, value

    params, model_state, opt_state = state.params, state.model_state, state.opt_state
    for t in range(2):
        params, model_state, opt_state, value = by_hand(
            params, model_state, opt_state, jax.random.fold_in(state.rng, t)
        )
        state, metrics = step(state, data)
        # Same ops in the same order under jit; 1e-6 allows XLA fusion differences.
        chex.assert_trees_all_close(state.params, params, rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(state.model_state, model_state, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(metrics["loss"], value, rtol=1e-6)
    chex.assert_trees_all_equal_structs(state.params, params)
    chex.assert_tree_all_finite(metrics)


def test_penalty_is_added_and_differentiated():
    data = toy.blobs(16)
    model, opt, strength = toy.linear(), optax.sgd(0.1), 0.3

    def penalty(p):
        return 0.5 * strength * jnp.sum(p["dense"]["w"] ** 2)

    state = _state(model, opt, data)
    plain, m_plain = training.make_train_step(model, opt)(state, data)
    reg, m_reg = training.make_train_step(model, opt, penalty=penalty)(state, data)
    w = state.params["dense"]["w"]
    # The difference of two float32 losses ~1.1 carries ~1 ulp = 1.2e-7 of cancellation error.
    np.testing.assert_allclose(m_reg["loss"] - m_plain["loss"], penalty(state.params), rtol=0, atol=3e-7)
    # d/dw (0.5 s |w|^2) = s w, so the regularised step moves w by an extra -lr s w.
    np.testing.assert_allclose(
        reg.params["dense"]["w"], plain.params["dense"]["w"] - 0.1 * strength * w, rtol=1e-5, atol=1e-7
    )


def test_svm_and_callable_losses():
    data = toy.blobs(16)
    model, opt = toy.linear(), optax.sgd(0.1)
    state = _state(model, opt, data)
    logits, _ = model.apply(state.params, {}, data["image"], train=True)
    s = np.asarray(logits, np.float64)
    y = data["label"]
    correct = s[np.arange(16), y][:, None]
    margins = np.maximum(0, s - correct + 1.0)
    margins[np.arange(16), y] = 0
    _, m = training.make_train_step(model, opt, loss="svm")(state, data)
    np.testing.assert_allclose(m["loss"], margins.sum(1).mean(), rtol=1e-5)  # float32 sums of O(1)

    def half_xent(*, logits, labels):
        return 0.5 * optax.softmax_cross_entropy_with_integer_labels(logits, labels)

    _, m_half = training.make_train_step(model, opt, loss=half_xent)(state, data)
    _, m_full = training.make_train_step(model, opt)(state, data)
    np.testing.assert_allclose(m_half["loss"], 0.5 * m_full["loss"], rtol=1e-6)


def test_dropout_key_changes_with_step_and_is_reproducible():
    data = toy.blobs(16)
    model, opt = toy.mlp(drop_rate=0.5), optax.sgd(0.0)  # lr 0: same params, only the key moves
    state = _state(model, opt, data)
    step = jax.jit(training.make_train_step(model, opt))
    s1, m1 = step(state, data)
    s2, m2 = step(s1, data)
    _, m1_again = step(state, data)
    assert float(m1["loss"]) == float(m1_again["loss"])
    assert float(m1["loss"]) != float(m2["loss"])  # fold_in(rng, 0) vs fold_in(rng, 1)


def test_per_layer_update_ratios_match_numpy():
    data = toy.blobs(16)
    model, opt = toy.mlp(), optax.sgd(0.1)
    state = _state(model, opt, data)
    new, m = training.make_train_step(model, opt, per_layer_ratios=True)(state, data)
    for layer in ("dense1", "dense2"):
        w = np.asarray(state.params[layer]["w"], np.float64)
        dw = np.asarray(new.params[layer]["w"], np.float64) - w
        expected = np.linalg.norm(dw) / np.linalg.norm(w)
        # dw recovered by subtraction in float32: relative error ~1e-4 on an O(1e-2) update.
        assert test_utils.rel_error(m[f"update_ratio/{layer}/w"], expected) < 1e-3
    ratios = training.update_ratios(state.params, jax.tree_util.tree_map(jnp.zeros_like, state.params))
    assert sorted(ratios) == ["dense1/b", "dense1/w", "dense2/b", "dense2/w"]
    assert all(float(r) == 0.0 for r in ratios.values())


def test_step_vmaps_over_seeds_and_learning_rates():
    """K runs in one program: vmap over states (seeds) and over an injected learning rate."""
    data = toy.blobs(16)
    model = toy.mlp(drop_rate=0.2)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    step = training.make_train_step(model, opt)
    states = [_state(model, opt, data, seed=s) for s in range(3)]
    lrs = jnp.array([0.01, 0.1, 1.0])
    states = [
        s._replace(opt_state=s.opt_state._replace(hyperparams={"learning_rate": lr})) for s, lr in zip(states, lrs)
    ]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
    out, metrics = jax.jit(jax.vmap(step, in_axes=(0, None)))(stacked, data)
    for k, s in enumerate(states):
        ref, ref_m = jax.jit(step)(s, data)
        chex.assert_trees_all_close(
            jax.tree_util.tree_map(lambda x: x[k], out.params), ref.params, rtol=1e-6, atol=1e-7
        )  # batched matmuls may reassociate
        np.testing.assert_allclose(metrics["loss"][k], ref_m["loss"], rtol=1e-6)


def test_jitted_step_does_not_retrace_and_donates():
    data = toy.blobs(16)
    model, opt = toy.linear(), optax.adam(1e-2)
    step = training.make_train_step(model, opt)
    traced = chex.assert_max_traces(step, n=1)
    jitted = training.jit_train_step(traced)
    state = _state(model, opt, data)
    old_w = state.params["dense"]["w"]
    for _ in range(3):
        state, _ = jitted(state, data)
    assert old_w.is_deleted()  # the first state's buffers were donated
    assert int(state.step) == 3


def test_eval_step_and_evaluate_match_numpy_with_padding():
    data = toy.blobs(23)  # 23 = 2 * 10 + 3: the last batch is padded and masked
    model, opt = toy.mlp(batch_norm=True), optax.sgd(0.1)
    state = _state(model, opt, data)
    state, _ = training.make_train_step(model, opt)(state, data)  # non-trivial BN running stats
    eval_step = training.make_eval_step(model)
    logits, _ = model.apply(state.params, state.model_state, data["image"], train=False)
    per_example = np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, data["label"]), np.float64)
    acc = (np.argmax(np.asarray(logits), 1) == data["label"]).mean()
    got = training.evaluate(eval_step, state, data, batch_size=10)
    # float32 sums of 23 O(1) terms.
    assert abs(got["loss"] - per_example.mean()) < 1e-5
    assert abs(got["accuracy"] - acc) < 1e-6
    batches = [{k: v[i : i + 7] for k, v in data.items()} for i in range(0, 23, 7)]
    got_iter = training.evaluate(eval_step, state, batches)
    assert abs(got_iter["loss"] - per_example.mean()) < 1e-5
    assert abs(got_iter["accuracy"] - acc) < 1e-6


def test_train_epoch_scan_equals_a_python_loop():
    data = toy.blobs(50)
    model, opt = toy.mlp(drop_rate=0.1, batch_norm=True), optax.adam(1e-2)
    step = training.make_train_step(model, opt)
    state = _state(model, opt, data)
    key = jax.random.PRNGKey(7)
    out, metrics = training.train_epoch_scan(step, state, data, batch_size=16, epoch=2, data_key=key)
    chex.assert_shape(metrics["loss"], (3,))  # 50 // 16 batches, remainder dropped
    perm = np.asarray(training.epoch_permutation(key, 2, 50))
    ref, jstep = state, jax.jit(step)
    for i in range(3):
        idx = perm[i * 16 : (i + 1) * 16]
        ref, m = jstep(ref, {"image": data["image"][idx], "label": data["label"][idx]})
        np.testing.assert_allclose(metrics["loss"][i], m["loss"], rtol=1e-6)
    chex.assert_trees_all_close(out.params, ref.params, rtol=1e-6, atol=1e-7)  # scan vs jit: fusion only
    assert sorted(perm.tolist()) == list(range(50))


def test_pmap_axis_name_averages_gradients():
    """Two devices with half the batch each give the single-device full-batch step."""
    out = test_utils.run_with_devices(
        """
        import jax, jax.numpy as jnp, numpy as np, optax
        from jax231 import training
        from tests.training import toy
        data = toy.blobs(16)
        model, opt = toy.linear(), optax.sgd(0.5)
        state = training.create_train_state(model, opt, rng=jax.random.PRNGKey(0), input_shape=(4, 1))
        ref, ref_m = jax.jit(training.make_train_step(model, opt))(state, data)
        step = jax.pmap(training.make_train_step(model, opt, axis_name="d"), axis_name="d")
        rep = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
        shards = {k: v.reshape((2, 8) + v.shape[1:]) for k, v in data.items()}
        new, m = step(rep, shards)
        err = max(float(jnp.max(jnp.abs(a[0] - b))) for a, b in
                  zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(ref.params)))
        print(err, float(m["loss"][0]), float(ref_m["loss"]), float(m["accuracy"][1]), float(ref_m["accuracy"]))
        """,
        num_devices=2,
    )
    err, loss, ref_loss, acc, ref_acc = map(float, out.split())
    assert err < 1e-6  # mean of two half-batch means == full-batch mean up to float32 rounding
    assert abs(loss - ref_loss) < 1e-6 and abs(acc - ref_acc) < 1e-7


def test_pmap_devices_draw_independent_dropout_masks():
    """Under pmap each device folds its index into the dropout key.

    Both devices get the SAME shard. If they shared one key, the pmean'd update
    would equal the single-device update on that shard with key fold_in(rng, t);
    with per-device keys it equals the mean of the single-device updates taken
    with keys fold_in(fold_in(rng, t), i) for i = 0, 1.
    """
    out = test_utils.run_with_devices(
        """
        import jax, jax.numpy as jnp, numpy as np, optax
        from jax231 import training
        from tests.training import toy
        data = toy.blobs(8)
        model, opt = toy.mlp(drop_rate=0.5), optax.sgd(0.5)
        state = training.create_train_state(model, opt, rng=jax.random.PRNGKey(0), input_shape=(4, 1))
        step = jax.pmap(training.make_train_step(model, opt, axis_name="d"), axis_name="d")
        rep = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
        both = {k: jnp.stack([v, v]) for k, v in data.items()}
        new, _ = step(rep, both)
        loss_fn = training.make_loss_fn(model)
        k_t = jax.random.fold_in(state.rng, state.step)
        def grads(key):
            return jax.grad(lambda p: loss_fn(p, state.model_state, data, key, train=True)[0])(state.params)
        shared = grads(k_t)
        per_device = jax.tree_util.tree_map(lambda a, b: (a + b) / 2,
                                            grads(jax.random.fold_in(k_t, 0)), grads(jax.random.fold_in(k_t, 1)))
        got = jax.tree_util.tree_map(lambda w, w0: (w0 - w[0]) / 0.5, new.params, state.params)
        diff = lambda a, b: max(float(jnp.max(jnp.abs(x - y))) for x, y in
                                zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
        print(diff(got, per_device), diff(got, shared))
        """,
        num_devices=2,
    )
    err_per_device, err_shared = map(float, out.split())
    assert err_per_device < 1e-5  # float32 rounding of (w0 - w1) / lr
    assert err_shared > 1e-3  # one shared mask would give this gradient instead


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"batch": {"image": np.zeros((4, 4, 1), np.float32), "label": np.zeros(3, np.int32)}}, "batch"),
        ({"batch": {"image": np.zeros((4, 4, 1), np.float32)}}, "batch"),
    ],
)
def test_step_rejects_bad_batches(kwargs, match):
    model, opt = toy.linear(), optax.sgd(0.1)
    state = _state(model, opt, {"image": np.zeros((4, 4, 1))})
    with pytest.raises(ValueError, match=match):
        training.make_train_step(model, opt)(state, kwargs["batch"])


def test_bad_options_raise():
    with pytest.raises(ValueError, match="loss"):
        training.make_train_step(toy.linear(), optax.sgd(0.1), loss="hinge")
    with pytest.raises(ValueError, match="input_shape"):
        training.create_train_state(toy.linear(), optax.sgd(0.1), rng=jax.random.PRNGKey(0), input_shape=(0,))
    with pytest.raises(ValueError, match="batch_size"):
        training.train_epoch_scan(
            training.make_train_step(toy.linear(), optax.sgd(0.1)),
            _state(toy.linear(), optax.sgd(0.1), toy.blobs(8)),
            toy.blobs(8),
            batch_size=9,
            epoch=0,
        )
