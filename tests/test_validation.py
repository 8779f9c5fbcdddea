"""The one validation module, the one registry type, and the library's bad-input checks built on them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import _validation, losses, models, optimizers, pipelines
from jax231._registry import Registry

V = _validation


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "check, value, message",
    [
        (V.check_positive_int, 0, "n: expected an int >= 1, got 0"),
        (V.check_positive_int, True, "n: expected an int >= 1, got True"),  # a bool is not a count
        (V.check_positive_int, 2.0, "n: expected an int >= 1, got 2.0"),
        (V.check_non_negative_int, -1, "n: expected an int >= 0, got -1"),
        (V.check_seed, -1, "n: expected an int in [0, 4294967295], got -1"),
        (V.check_seed, 2**40, "n: expected an int in [0, 4294967295], got 1099511627776"),
        (V.check_finite, math.inf, "n: expected a finite number, got inf"),
        (V.check_positive, 0.0, "n: expected a finite number > 0, got 0.0"),
        (V.check_positive, math.nan, "n: expected a finite number > 0, got nan"),
        (V.check_non_negative, -1e-9, "n: expected a finite number >= 0, got -1e-09"),
        (V.check_rate, 1.0, "n: expected a finite number in [0, 1), got 1.0"),
        (V.check_bool, 1, "n: expected a Python bool, got 1"),
    ],
)
def test_every_check_speaks_one_format(check, value, message):
    with pytest.raises(ValueError) as info:
        check("n", value)
    assert str(info.value) == message


def test_checks_return_the_canonical_type():
    assert type(V.check_positive_int("n", np.int64(3))) is int
    assert type(V.check_positive("x", np.float32(0.5))) is float
    assert V.check_choice("c", "b", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"^c: expected one of 'a', 'b', got 'z'$"):
        V.check_choice("c", "z", ("a", "b"))
    with pytest.raises(ValueError, match=r"^f keyword arguments: expected some of \(a, b\), got unknown c, d$"):
        V.check_keywords("f", ["a", "d", "c"], ("a", "b"))


def test_check_values_passes_traced_values_and_checks_concrete_arrays():
    V.check_values("lr", jnp.array([0.1, 0.2]), low=0.0)
    jax.jit(lambda x: V.check_values("lr", x, low=0.0) or x)(-1.0)  # traced: unknown, passes
    with pytest.raises(ValueError, match=r"^lr: expected finite values >= 0, got"):
        V.check_values("lr", np.array([0.1, -0.2]), low=0.0)


# -------------------------------------------------------------------------- registry
def test_registry_derives_names_and_checks_keywords():
    registry: Registry[int] = Registry("thing")

    @registry.register
    def double(x: int = 1) -> int:
        return 2 * x

    registry.register(lambda *, y=0: -y, name="neg")
    registry.register_prefix("add:", lambda rest, *, x=0: int(rest) + x)
    assert registry.names == ("double", "neg") and registry.prefixes == ("add:",)
    assert registry.get("double", x=3) == 6 and registry.get("add:5", x=1) == 6
    assert registry.keywords("double") == ("x",) and registry.keywords("add:1") == ("x",)
    assert "add:7" in registry and "add:" not in registry and "triple" not in registry
    with pytest.raises(ValueError, match=r"^thing name: expected one of double, neg, add:<\.\.\.>, got 'triple'$"):
        registry.get("triple")
    with pytest.raises(ValueError, match=r"^double keyword arguments: expected some of \(x\), got unknown z$"):
        registry.get("double", z=1)
    with pytest.raises(ValueError, match="not registered yet"):
        registry.register(double)


def test_library_registries_are_registries_of_the_real_factories():
    assert models.REGISTRY.factory("resnet") is models.resnet
    assert models.REGISTRY.factory("rnn") is models.rnn_classifier
    assert optimizers.REGISTRY.factory("adam") is optimizers.adam
    assert optimizers.SCHEDULES.names == ("constant", "step", "exponential", "cosine", "warmup_cosine")
    assert pipelines.SOURCES.names == (
        "mnist1d",
        "digits",
        "cifar10_shared",
        "digit_canvas",
        "digit_canvas_single",
        "digit_canvas_cifar",
    )
    assert pipelines.SOURCES.prefixes == ("tfds:", "npz:", "imagefolder:")
    # Capabilities are attributes of the built object, not of the name.
    assert optimizers.get("lbfgs").needs_objective and not optimizers.get("adam").needs_objective


def test_unknown_optimizer_keyword_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"^adam keyword arguments: expected some of \(learning_rate, beta1, beta2, eps\), "
        r"got unknown b1$",
    ):
        optimizers.get("adam", b1=0.9)


# ------------------------------------------------------------------- library bad input
@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: optimizers.adam(learning_rate=math.inf), "learning_rate"),
        (lambda: optimizers.sgd(learning_rate=math.nan), "learning_rate"),
        (lambda: optimizers.momentum(learning_rate=0.1, momentum=-0.5), "momentum"),
        (
            lambda: optimizers.set_hyperparams(optimizers.sgd(0.1).init({"w": jnp.ones(2)}), learning_rate=-1),
            "learning_rate",
        ),
        (
            lambda: optimizers.set_hyperparams(optimizers.sgd(0.1).init({"w": jnp.ones(2)}), learning_rate=math.nan),
            "learning_rate",
        ),
        (lambda: losses.l2_penalty({"w": jnp.ones(2)}, strength=-1), "strength"),
        (lambda: losses.l1_penalty({"w": jnp.ones(2)}, strength=math.inf), "strength"),
        (lambda: losses.svm_loss(logits=jnp.zeros((2, 3)), labels=jnp.array([0, 1]), margin=-1.0), "margin"),
        (lambda: optimizers.make_schedule("cosine", 0.1, num_steps=0), "num_steps"),
        (lambda: optimizers.make_schedule("cosin", 0.1, num_steps=10), "schedule name"),
    ],
)
def test_library_rejects_impossible_values_in_one_line(build, name):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert message.startswith(f"{name}: expected ") and ", got " in message and "\n" not in message


def test_set_hyperparams_still_takes_traced_sweeps():
    state = optimizers.sgd(0.1).init({"w": jnp.ones(2)})
    states = jax.vmap(lambda lr: optimizers.set_hyperparams(state, learning_rate=lr))(jnp.array([0.1, 0.2]))
    np.testing.assert_array_equal(states.hyperparams["learning_rate"], np.float32([0.1, 0.2]))


def test_make_schedule_is_the_schedules_of_the_notes():
    lr, n = 0.1, 100
    warm = optimizers.make_schedule("warmup_cosine", lr, num_steps=n, warmup_steps=10)
    ref = optimizers.schedules.linear_warmup(
        lr, warmup_steps=10, after=optimizers.schedules.cosine_decay(lr, decay_steps=90)
    )
    for t in (0, 5, 10, 50, 99):
        assert float(warm(t)) == float(ref(t))  # the same functions, so bitwise the same numbers
    assert optimizers.make_schedule("constant", lr, num_steps=n) == lr


# -------------------------------------------------------------------------- data door
def test_npz_refuses_pickled_object_arrays_and_corrupt_files(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}, {"b": 2}], dtype=object), y_train=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^name: expected numeric arrays in .*got a pickled object array 'x_train'"):
        pipelines.load_arrays(f"npz:{pickled}", "train")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip archive")
    with pytest.raises(ValueError, match=r"^name: expected a readable \.npz file"):
        pipelines.load_arrays(f"npz:{corrupt}", "train")
    with pytest.raises(FileNotFoundError, match=r"^name: expected an existing \.npz file"):
        pipelines.load_arrays(f"npz:{tmp_path / 'missing.npz'}", "train")
