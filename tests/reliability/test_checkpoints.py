"""Checkpoints through ``fit``: damage is detected and the newest intact one is used; a changed
configuration is refused naming the fields (unless allowed); resume is bitwise exact, with augmentation
too, also through ``experiments/train``.

Every damage row takes a run checkpointed at steps 5 and 10, damages checkpoint 10
one way, and resumes to step 20: the run must end with parameters bitwise equal to
an uninterrupted run's (falling back to checkpoint 5 when 10 is unreadable, never
training on from garbage), saying so in one warning line.
"""

from __future__ import annotations

import pathlib
import shutil
import warnings

import jax
import numpy as np
import pytest

from experiments.train import config as train_config
from experiments.train import experiment as train_experiment
from jax231 import models, optimizers, pipelines, training

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the `runs` fixture (two fits) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("reliability_checkpoints")

MLP = models.get("mlp", hidden_sizes=(16,), num_classes=10)
DROPOUT_MLP = models.get("mlp", hidden_sizes=(16,), num_classes=10, drop_rate=0.3)
ADAM = optimizers.adam(learning_rate=1e-2)
DIGITS = pipelines.load_arrays("digits", "train[:160]")
KW = {"batch_size": 32, "eval_every": 5, "seed": 1, "max_to_keep": None, "check_initial_loss": False}


def augment(key, batch):
    return {**batch, "image": pipelines.augment_batch(key, batch["image"], pad_crop=1)}


def _fit(workdir, num_steps, *, model=MLP, opt=ADAM, train=DIGITS, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.fit(model, opt, train=train, num_steps=num_steps, workdir=str(workdir), **{**KW, **kw})
    return result, [str(w.message) for w in caught if str(w.message).startswith("checkpoint:")]


def _assert_same(a, b):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    reference, _ = _fit(root / "reference", 20)
    _fit(root / "half", 10)
    return root, reference


# ----------------------------------------------------------------------------- damage
def _arrays(step_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        (p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"),
        key=lambda p: p.stat().st_size,
        reverse=True,
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 4 : len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    path.write_bytes(bytes(data))


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {  # name -> (damage of checkpoint 10's directory, always detected)
    "truncate_biggest_array": (lambda d: _truncate(_arrays(d)[0]), False),
    "truncate_every_array": (lambda d: [_truncate(p) for p in _arrays(d)], True),
    "zero_every_array": (lambda d: [_zero(p) for p in _arrays(d)], True),
    "flip_one_byte_everywhere": (lambda d: [_flip(p) for p in _arrays(d)], True),
    "delete_every_array": (lambda d: [p.unlink() for p in _arrays(d)], True),
    "truncate_loop_json": (lambda d: _truncate(d / "loop" / "metadata"), True),
    "empty_loop_json": (lambda d: (d / "loop" / "metadata").write_bytes(b""), True),
    "loop_json_without_integrity": (lambda d: (d / "loop" / "metadata").write_text("{}"), True),
    "delete_loop_json": (lambda d: (d / "loop" / "metadata").unlink(), True),
    "delete_state_dir": (lambda d: shutil.rmtree(d / "state"), True),
    "delete_state_metadata": (lambda d: (d / "state" / "_METADATA").unlink(), True),
    "zero_state_manifest": (lambda d: _zero(d / "state" / "manifest.ocdbt"), False),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_latest_checkpoint_falls_back_and_resumes_bitwise(runs, tmp_path, damage):
    root, reference = runs
    shutil.copytree(root / "half", tmp_path / "run")
    make, detected = DAMAGES[damage]
    make(tmp_path / "run" / "checkpoints" / "10")
    result, messages = _fit(tmp_path / "run", 20)
    assert result.status == "completed" and int(result.state.step) == 20
    _assert_same(result.state.params, reference.state.params)  # never trained on from garbage
    if detected:
        assert len(messages) == 1 and "\n" not in messages[0], messages
        assert "checkpoint 10" in messages[0] and "step 5" in messages[0], messages[0]
        assert (tmp_path / "run" / "checkpoints" / "corrupt-10").is_dir()  # kept, no longer a step


def test_every_checkpoint_corrupt_is_one_line_error(runs, tmp_path):
    root, _ = runs
    shutil.copytree(root / "half", tmp_path / "run")
    for step in ("5", "10"):
        for path in _arrays(tmp_path / "run" / "checkpoints" / step):
            _truncate(path)
    with pytest.raises(ValueError, match=r"^workdir: expected an intact checkpoint in .*, got none") as info:
        _fit(tmp_path / "run", 20)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("leftover", ["checkpoints_deleted", "tmp_dir_of_a_killed_write"])
def test_missing_checkpoints_or_leftovers_resume_bitwise(runs, tmp_path, leftover):
    root, reference = runs
    shutil.copytree(root / "half", tmp_path / "run")
    if leftover == "checkpoints_deleted":
        shutil.rmtree(tmp_path / "run" / "checkpoints")
    else:
        junk = tmp_path / "run" / "checkpoints" / "15.orbax-checkpoint-tmp-1234"
        junk.mkdir()
        (junk / "half_written").write_bytes(b"\x00" * 100)
    result, _ = _fit(tmp_path / "run", 20)
    _assert_same(result.state.params, reference.state.params)


# ----------------------------------------------------------------------------- changed configuration
_shuffled = {"image": DIGITS["image"], "label": np.roll(DIGITS["label"], 1)}
CHANGES = [
    ("learning_rate", {"hyperparams": {"learning_rate": 0.5}}, r"hyperparams: checkpoint .*learning_rate"),
    ("l2", {"l2": 0.1}, r"l2: checkpoint None, now 0\.1"),
    ("train_labels", {"train": _shuffled}, r"train_labels_sha256"),
    ("train_size", {"train": {k: v[:128] for k, v in DIGITS.items()}}, r"train_examples: checkpoint 160, now 128"),
    ("seed", {"seed": 4}, r"seed=1, got seed=4"),
    ("batch_size", {"batch_size": 16}, r"batch_size=32, got batch_size=16"),
    ("model_width", {"model": models.get("mlp", hidden_sizes=(32,), num_classes=10)}, r"another shape"),
    ("optimizer", {"opt": optimizers.sgd(learning_rate=1e-2)}, r"another shape|hyperparams"),
]


@pytest.mark.parametrize("change, match", [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_resume_with_changed_configuration_is_refused_naming_the_field(runs, tmp_path, change, match):
    root, _ = runs
    shutil.copytree(root / "half", tmp_path / "run")
    with pytest.raises(ValueError, match=match) as info:
        _fit(tmp_path / "run", 20, **change)
    assert "\n" not in str(info.value)


def test_an_explicit_override_resumes_and_names_the_change(runs, tmp_path):
    root, _ = runs
    shutil.copytree(root / "half", tmp_path / "run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.fit(
            MLP,
            ADAM,
            train=DIGITS,
            num_steps=20,
            hyperparams={"learning_rate": 0.02},
            checkpointing=training.Checkpointing(str(tmp_path / "run"), max_to_keep=None, allow_config_change=True),
            **{k: v for k, v in KW.items() if k != "max_to_keep"},
        )
    assert result.status == "completed" and int(result.state.step) == 20
    assert any("changed configuration" in str(w.message) and "learning_rate" in str(w.message) for w in caught)


# ----------------------------------------------------------------------------- bitwise resume
RESUMES = [
    ("plain", {}),
    ("augmented_batch_fn", {"batch_fn": augment}),
    ("dropout_rng", {"model": DROPOUT_MLP}),
    ("l2_as_data", {"l2": 1e-3}),
    ("augmented_and_dropout", {"batch_fn": augment, "model": DROPOUT_MLP}),
]


@pytest.mark.parametrize("kw", [c[1] for c in RESUMES], ids=[c[0] for c in RESUMES])
def test_interrupted_then_resumed_equals_uninterrupted_bitwise(tmp_path, kw):
    full, _ = _fit(tmp_path / "full", 20, **kw)
    _fit(tmp_path / "cut", 10, **kw)
    resumed, _ = _fit(tmp_path / "cut", 20, **kw)
    _assert_same(resumed.state, full.state)


def test_train_experiment_resumes_bitwise_with_augmentation(tmp_path):
    def config(num_steps):
        c = train_config.get_config("tiny")
        c.dataset, c.augment, c.num_steps, c.eval_every, c.checkpoint_every = "digits", True, num_steps, 5, 5
        c.model_kwargs.hidden_sizes = (8,)
        return c

    full = train_experiment.run(config(20), tmp_path / "full")
    train_experiment.run(config(10), tmp_path / "cut")
    resumed = train_experiment.run(config(20), tmp_path / "cut")
    assert full.fit.status == resumed.fit.status == "completed"
    _assert_same(resumed.fit.state, full.fit.state)
    assert resumed.test == full.test


def test_train_experiment_refuses_a_changed_l2_on_resume(tmp_path):
    c = train_config.get_config("tiny")
    c.dataset, c.num_steps, c.eval_every = "digits", 10, 5
    train_experiment.run(c, tmp_path)
    c.l2, c.num_steps = 0.01, 20
    with pytest.raises(ValueError, match=r"l2: checkpoint None, now 0\.01"):
        train_experiment.run(c, tmp_path)
    c.allow_config_change = True
    assert train_experiment.run(c, tmp_path).fit.status == "completed"
