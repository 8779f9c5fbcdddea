"""kNN: no-loop distances vs one- and two-loop NumPy, predictions vs the course's two loops and scikit-learn."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsClassifier

from jax231.models import knn

# --- float64 NumPy references, transcribed from the course's assignment 1. -------------


def two_loop_distances(x_test, x_train, metric):
    x_test = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    x_train = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    dists = np.zeros((len(x_test), len(x_train)))
    for i in range(len(x_test)):
        for j in range(len(x_train)):
            diff = x_test[i] - x_train[j]
            dists[i, j] = np.sum(np.abs(diff)) if metric == "l1" else np.sqrt(np.sum(diff**2))
    return dists


def one_loop_distances(x_test, x_train, metric):
    x_test = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    x_train = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    dists = np.zeros((len(x_test), len(x_train)))
    for i in range(len(x_test)):
        diff = x_train - x_test[i]
        dists[i] = np.sum(np.abs(diff), axis=1) if metric == "l1" else np.sqrt(np.sum(diff**2, axis=1))
    return dists


def two_loop_predict(x_train, y_train, x_test, k, metric):
    dists = two_loop_distances(x_test, x_train, metric)
    y_pred = np.zeros(len(x_test), np.int64)
    for i in range(len(x_test)):
        closest_y = np.asarray(y_train)[np.argsort(dists[i], kind="stable")[:k]]
        y_pred[i] = np.argmax(np.bincount(closest_y))  # ties -> smallest label
    return y_pred


def random_data(n_train=60, n_test=25, shape=(4, 3), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n_train, *shape)).astype(np.float32),
        rng.integers(0, classes, n_train),
        rng.normal(size=(n_test, *shape)).astype(np.float32),
    )


@pytest.mark.parametrize("metric", knn.METRICS)
@pytest.mark.parametrize("chunk_size", [None, 7])  # 7 does not divide 25: the padded last chunk
def test_no_loop_distances_equal_one_and_two_loops(metric, chunk_size):
    x_train, _, x_test = random_data()
    dists = knn.distances(x_test, x_train, metric=metric, chunk_size=chunk_size)
    chex.assert_shape(dists, (25, 60))
    # The notes' check: Frobenius norm of the difference < 1e-3 (float32 vs float64).
    assert np.linalg.norm(np.asarray(dists, np.float64) - two_loop_distances(x_test, x_train, metric)) < 1e-3
    assert np.linalg.norm(np.asarray(dists, np.float64) - one_loop_distances(x_test, x_train, metric)) < 1e-3


def test_l1_distance_spans_several_feature_blocks():
    # 150 features = 3 blocks of 64 (the last padded): exercises the blocked L1 sum.
    x_train, _, x_test = random_data(n_train=9, n_test=5, shape=(150,))
    dists = knn.distances(x_test, x_train, metric="l1")
    assert np.linalg.norm(np.asarray(dists, np.float64) - two_loop_distances(x_test, x_train, "l1")) < 1e-3


@pytest.mark.parametrize("metric", knn.METRICS)
@pytest.mark.parametrize("k", [1, 5])
def test_predictions_equal_the_two_loop_reference_exactly(metric, k):
    x_train, y_train, x_test = random_data(seed=k)
    pred = knn.predict(x_train, y_train, x_test, k=k, metric=metric, chunk_size=10)
    np.testing.assert_array_equal(pred, two_loop_predict(x_train, y_train, x_test, k, metric))


@pytest.mark.parametrize("k", [4, 7])
def test_predictions_equal_scikit_learn(k):
    # scikit-learn's uniform vote also breaks ties towards the smallest label, and
    # random continuous data has no distance ties, so the two agree exactly.
    x_train, y_train, x_test = random_data(seed=10 + k)
    ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x_train.reshape(60, -1), y_train)
    pred = knn.predict(x_train, y_train, x_test, k=k)
    np.testing.assert_array_equal(pred, ref.predict(x_test.reshape(25, -1)))


def test_vote_ties_go_to_the_smallest_label():
    # One query at 0; neighbours at distance 1, 2, 3, 4 with labels 2, 1, 1, 2:
    # k=2 ties 1 vs 1 -> label 1; k=4 ties 2 vs 2 -> label 1; k=1 -> label 2.
    x_train = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    y_train = np.array([2, 1, 1, 2])
    x_test = np.zeros((1, 1), np.float32)
    got = knn.predict_many(x_train, y_train, x_test, ks=(1, 2, 3, 4))
    np.testing.assert_array_equal(got[:, 0], [2, 1, 1, 1])


def test_k_equal_to_training_size_predicts_the_majority_label():
    x_train, y_train, x_test = random_data(n_train=11, classes=3)
    pred = knn.predict(x_train, y_train, x_test, k=11)
    np.testing.assert_array_equal(pred, np.full(25, np.argmax(np.bincount(y_train))))


def test_predict_under_jit_with_static_num_classes():
    x_train, y_train, x_test = random_data()
    f = jax.jit(lambda a, b, c: knn.predict(a, b, c, k=3, num_classes=4))
    np.testing.assert_array_equal(f(x_train, y_train, x_test), knn.predict(x_train, y_train, x_test, k=3))


def test_cross_validation_equals_a_kfold_loop_with_scikit_learn():
    num_folds = 5
    rng = np.random.default_rng(0)
    # Two noisy clusters so that accuracies vary with k.
    y = rng.integers(0, 2, 53)  # 53 is not divisible by 5: unequal folds
    x = (rng.normal(size=(53, 5)) + 1.5 * y[:, None]).astype(np.float32)
    ks = (1, 3, 10)
    acc = knn.cross_validate(x, y, ks=ks, num_folds=num_folds, metric="l2")
    chex.assert_shape(acc, (len(ks), num_folds))
    for f, (train_idx, val_idx) in enumerate(KFold(n_splits=num_folds, shuffle=False).split(x)):
        for i, k in enumerate(ks):
            ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x[train_idx], y[train_idx])
            # Exact: accuracies are counts / fold size, computed from identical predictions.
            assert float(acc[i, f]) == pytest.approx(ref.score(x[val_idx], y[val_idx]), abs=1e-6)


@pytest.mark.parametrize(
    "num_test, num_train, metric",
    [(10_000, 50_000, "l2"), (10_000, 50_000, "l1"), (2_000, 20_000, "l2"), (3, 50_000, "l2")],
)
def test_chunking_bounds_the_working_set(num_test, num_train, metric):
    # The default chunk keeps chunk x num_train (x 64 features for L1) within 2**24 floats
    # (for CIFAR-10's 50,000 x 10,000: at most 335 test rows per L2 chunk), and the chunks
    # are balanced: padding the last chunk wastes fewer rows than there are chunks.
    budget = (1 << 24) // (num_train * (64 if metric == "l1" else 1))
    chunk = knn._chunk(None, num_test, num_train, metric)
    num_chunks = -(-num_test // chunk)
    assert 1 <= chunk <= max(1, min(budget, num_test))
    assert num_chunks * chunk - num_test < num_chunks
    assert num_chunks == max(1, -(-num_test // budget))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, r"k must be an integer with 1 <= k <= 60"),
        ({"k": 61}, r"k must be an integer with 1 <= k <= 60"),
        ({"k": 1, "metric": "cosine"}, r"metric must be one of \['l1', 'l2'\]"),
        ({"k": 1, "chunk_size": 0}, r"chunk_size: expected an int >= 1"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    x_train, y_train, x_test = random_data()
    with pytest.raises(ValueError, match=match):
        knn.predict(x_train, y_train, x_test, **kwargs)


def test_bad_shapes_raise():
    x_train, y_train, x_test = random_data()
    with pytest.raises(ValueError, match="same number of features"):
        knn.distances(x_test[:, :2], x_train)
    with pytest.raises(ValueError, match=r"y_train must be an integer array of shape \(60,\)"):
        knn.predict(x_train, y_train[:-1], x_test, k=1)
    with pytest.raises(ValueError, match="num_folds must be an integer in"):
        knn.cross_validate(x_train, y_train, ks=(1,), num_folds=1)
    with pytest.raises(ValueError, match=r"ks\[1\] must be an integer with 1 <= ks\[1\] <= 48"):
        knn.cross_validate(x_train, y_train, ks=(1, 49), num_folds=5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes\) = \[0, 3\)"):
        knn.predict(x_train, y_train, x_test, k=1, num_classes=3)  # labels go up to 3
    with pytest.raises(ValueError, match=r"labels must lie in"):
        knn.predict(x_train, y_train - 1, x_test, k=1)
    with pytest.raises(ValueError, match="num_classes must be given"):
        jax.jit(lambda a, b, c: knn.predict(a, b, c, k=1))(x_train, y_train, x_test)
