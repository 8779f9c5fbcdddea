"""The command-line table: bad input for EVERY experiment main, and what must happen.

Each :class:`CliCase` is one command line of one main: the exit status it must
end with (2: usage, 1: environment) and a fragment its one stderr line must
contain. :func:`cases` builds the table for a scratch directory ``root``.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Main:
    """One experiment main and the config fields its generic cases poke."""

    name: str
    float_field: str | None  # a float config field (inf, nan, text)
    int_field: str | None  # an int config field that must be >= 1
    seed_flag: str | None  # the argument that sets a seed (without the value)
    config: bool = True  # has --config


MAINS = (
    Main("captioning", "learning_rate", "num_steps", "--config.seed"),
    Main("claims", "dead_relu.good_lr", "dead_relu.num_steps", "--config.dead_relu.seed"),
    Main("compare_optimizers", "tau_max", "num_steps", "--seeds"),
    Main("compare_regularizers", "learning_rate", "num_epochs", "--seeds"),
    Main("detection", "learning_rate", "num_steps", "--config.seed"),
    Main("features", None, "net.num_steps", "--config.seed"),
    Main("generative", "ae_lr", "ae_steps", "--config.seed"),
    Main("hparam_search", "learning_rate", "num_coarse", "--config.seed"),
    Main("knn", None, "num_folds", None),
    Main("linear", "shrink", "num_steps", "--config.seed"),
    Main("localization", "learning_rate", "num_steps", "--config.seed"),
    Main("lr_find", "max_lr", "num_steps", "--config.seed"),
    Main("multihost", None, None, None, config=False),
    Main("rl", "learning_rates.dqn", "total_steps", None),
    Main("segmentation", "learning_rate", "num_steps", "--config.seed"),
    Main("speedrun", "lr", "batch_size", None),
    Main("train", "learning_rate", "num_steps", "--config.seed"),
    Main("transfer", "learning_rate", "pretrain_steps", "--config.seed"),
    Main("visualize", "style.learning_rate", "num_attempts", "--config.seed"),
)


@dataclasses.dataclass(frozen=True)
class CliCase:
    """One command line and its promised outcome.

    Attributes:
      id: ``<main>-<kind>``.
      kind: the kind of mistake (the report counts cases per kind).
      module: the main's module.
      argv: the arguments after the program name.
      code: the exit status it must end with.
      expect: a fragment of the one stderr line (case-insensitive).
      inject: ``None``, ``'enospc'`` or ``'locked'`` (see ``cli_worker``).
    """

    id: str
    kind: str
    module: str
    argv: tuple[str, ...]
    code: int
    expect: str
    inject: str | None = None

    def as_json(self) -> dict:
        return {"id": self.id, "module": self.module, "argv": list(self.argv), "inject": self.inject}


def _generic(main: Main, root: str) -> list[CliCase]:
    """The mistakes every main must answer in one line."""
    module = f"experiments.{main.name}.main"
    workdir = os.path.join(root, main.name)
    wd = f"--workdir={workdir}"
    blocker = os.path.join(root, "a_file")
    out = []

    def add(kind, argv, code, expect, inject=None):
        out.append(CliCase(f"{main.name}-{kind}", kind, module, tuple(argv), code, expect, inject))

    if main.config:
        add("misspelt_config_field", [wd, "--config.no_such_fieldx=1"], 2, "no_such_fieldx")
    else:
        add("misspelt_flag", [wd, "--num_stepz=3"], 2, "num_stepz")
    add("unknown_flag", [wd, "--no_such_flag=1"], 2, "no_such_flag")
    add("positional_argument", [wd, "stray"], 2, "stray")
    add("workdir_missing", [], 2, "workdir")
    add("workdir_through_a_file", [f"--workdir={blocker}/sub"], 2, "workdir")
    add("workdir_locked", [wd + "_locked"], 2, "holding its lock", inject="locked")
    add("disk_full", [wd + "_full"], 1, "No space left on device", inject="enospc")
    if main.float_field:
        field = f"--config.{main.float_field}"
        add("number_inf", [wd, f"{field}=inf"], 2, main.float_field)
        add("number_nan", [wd, f"{field}=nan"], 2, main.float_field)
        add("number_text", [wd, f"{field}=abc"], 2, main.float_field)
        add("number_negative", [wd, f"{field}=-0.5"], 2, main.float_field)
    if main.int_field:
        field = f"--config.{main.int_field}"
        add("int_negative", [wd, f"{field}=-3"], 2, main.int_field)
        add("int_zero", [wd, f"{field}=0"], 2, main.int_field)
        add("int_float", [wd, f"{field}=2.5"], 2, main.int_field)
    if main.seed_flag:
        flag = main.seed_flag.lstrip("-").split(".")[-1]
        add("seed_negative", [wd, f"{main.seed_flag}=-1"], 2, flag)
        add("seed_huge", [wd, f"{main.seed_flag}=123456789012345678901234"], 2, flag)
    return out


def _multihost(root: str) -> list[CliCase]:
    module = "experiments.multihost.main"
    wd = f"--workdir={os.path.join(root, 'multihost')}"
    rows = [
        ("num_steps_negative", [wd, "--num_steps=-1"], 2, "num_steps"),
        ("global_batch_zero", [wd, "--global_batch=0"], 2, "global_batch"),
        ("devices_zero", [wd, "--launch_local=2", "--devices_per_process=0"], 2, "devices_per_process"),
        (
            "bad_coordinator",
            [wd, "--coordinator=nohostport", "--num_processes=2", "--process_id=0"],
            2,
            "coordinator_address",
        ),
        (
            "process_id_out_of_range",
            [wd, "--coordinator=localhost:1234", "--num_processes=2", "--process_id=5"],
            2,
            "process_id",
        ),
        ("partial_distributed", [wd, "--coordinator=localhost:1234"], 2, "num_processes"),
    ]
    return [CliCase(f"multihost-{k}", k, module, tuple(a), c, e) for k, a, c, e in rows]


def _train(root: str) -> list[CliCase]:
    """The train main (the one every other experiment's builders come from): names, data, kwargs."""
    module = "experiments.train.main"
    wd = f"--workdir={os.path.join(root, 'train')}"
    tiny = "--config=experiments/train/config.py:tiny"
    missing = os.path.join(root, "missing")
    rows = [
        ("unknown_model", ["--model=mlpp"], 2, "mlpp"),
        ("unknown_optimizer", ["--optimizer=adamm"], 2, "adamm"),
        ("unknown_dataset", ["--dataset=no_such_set"], 2, "no_such_set"),
        ("unknown_schedule", ["--schedule=cosin"], 2, "cosin"),
        ("unknown_loss", ["--config.loss=hinge"], 2, "hinge"),
        ("unknown_preset", ["--config=experiments/train/config.py:no_preset"], 2, "no_preset"),
        ("npz_missing", [f"--dataset=npz:{missing}.npz"], 2, "npz"),
        ("npz_corrupt", [f"--dataset=npz:{os.path.join(root, 'corrupt.npz')}"], 2, "npz"),
        ("npz_pickled_object_array", [f"--dataset=npz:{os.path.join(root, 'pickled.npz')}"], 2, "pickled"),
        ("npz_nan_pixel", [f"--dataset=npz:{os.path.join(root, 'nan.npz')}"], 2, "finite"),
        ("npz_negative_label", [f"--dataset=npz:{os.path.join(root, 'negative.npz')}"], 2, ">= 0"),
        ("npz_float_label", [f"--dataset=npz:{os.path.join(root, 'float_label.npz')}"], 2, "integer"),
        ("npz_one_hot_label", [f"--dataset=npz:{os.path.join(root, 'one_hot.npz')}"], 2, "one-hot"),
        ("imagefolder_missing", [f"--dataset=imagefolder:{missing}"], 2, "image folder"),
        ("imagefolder_corrupt_image", [f"--dataset=imagefolder:{os.path.join(root, 'folder')}"], 2, "corrupt"),
        ("lr_inf", ["--lr=inf"], 2, "learning_rate"),
        ("lr_negative", ["--lr=-0.1"], 2, "learning_rate"),
        ("l2_nan", ["--l2=nan"], 2, "l2"),
        ("l2_negative", ["--l2=-1"], 2, "l2"),
        ("drop_rate_one", ["--drop_rate=1.0"], 2, "drop_rate"),
        ("batch_larger_than_dataset", ["--batch_size=100000"], 2, "batch_size"),
        ("batch_negative", ["--batch_size=-4"], 2, "batch_size"),
        ("epochs_negative", ["--epochs=-1"], 2, "epochs"),
        ("eval_every_zero", ["--config.eval_every=0"], 2, "eval_every"),
        ("val_size_negative", ["--config.val_size=-5"], 2, "val_size"),
        ("val_size_too_large", ["--config.val_size=100000"], 2, "val_size"),
        ("explosion_factor_below_one", ["--config.explosion_factor=0.5"], 2, "explosion_factor"),
        ("bad_model_kwarg", ["--config.model_kwargs.no_such_kwarg=3"], 2, "no_such_kwarg"),
        ("bad_model_kwarg_value", ["--config.model_kwargs.hidden_sizes=(-4,)"], 2, "hidden_sizes"),
        ("bad_optimizer_kwarg", ["--config.optimizer_kwargs.no_such_kwarg=3"], 2, "no_such_kwarg"),
        ("bad_schedule_kwarg", ["--config.schedule_kwargs.no_such_kwarg=3"], 2, "no_such_kwarg"),
        ("bad_preprocess", ["--config.preprocess=zca"], 2, "preprocess"),
        ("bad_norm", ["--norm=group"], 2, "norm"),
    ]
    return [
        CliCase(
            f"train-{k}", k, module, (wd, tiny, *a) if not any(x.startswith("--config=") for x in a) else (wd, *a), c, e
        )
        for k, a, c, e in rows
    ]


def _resume(root: str) -> list[CliCase]:
    """The train main resumed in one workdir: a changed configuration is refused naming the field,
    unless ``--config.allow_config_change`` (in order: the first run trains 10 steps)."""
    module = "experiments.train.main"
    base = (
        f"--workdir={os.path.join(root, 'resume')}",
        "--config=experiments/train/config.py:tiny",
        "--config.dataset=digits",
        "--config.eval_every=5",
    )
    rows = [
        ("resume_first_run", ["--num_steps=10"], 0, ""),
        ("resume_changed_lr", ["--num_steps=20", "--lr=0.5"], 2, "learning_rate"),
        ("resume_changed_l2", ["--num_steps=20", "--l2=0.1"], 2, "l2"),
        ("resume_changed_model", ["--num_steps=20", "--config.model_kwargs.hidden_sizes=(32,)"], 2, "another shape"),
        ("resume_changed_seed", ["--num_steps=20", "--seed=5"], 2, "seed"),
        ("resume_changed_batch", ["--num_steps=20", "--batch_size=16"], 2, "batch_size"),
        ("resume_explicit_override", ["--num_steps=20", "--lr=0.011", "--config.allow_config_change=True"], 0, ""),
    ]
    return [CliCase(f"train-{k}", k, module, (*base, *a), c, e) for k, a, c, e in rows]


def _others(root: str) -> list[CliCase]:
    """Fields specific to one experiment (top_k, ranges, splits, names)."""

    def wd(name):
        return f"--workdir={os.path.join(root, name)}"

    rows = [
        ("hparam_search", "top_k_zero", ["--config.top_k=0"], "top_k"),
        ("hparam_search", "range_reversed", ["--config.ranges.learning_rate=(1.0,0.001)"], "learning_rate"),
        ("hparam_search", "range_inf", ["--config.ranges.l2=(1e-6,inf)"], "l2"),
        ("linear", "top_k_zero", ["--config.top_k=0"], "top_k"),
        ("linear", "unknown_loss", ["--config.losses=('hinge',)"], "hinge"),
        ("knn", "bad_train_split", ["--config.train_split=trian"], "trian"),
        ("knn", "bad_split_slice", ["--config.test_split=test[:abc]"], "test[:abc]"),
        ("knn", "unknown_metric", ["--config.metrics=('l3',)"], "l3"),
        ("knn", "k_zero", ["--config.ks=(0,1)"], "ks"),
        ("lr_find", "min_above_max", ["--config.min_lr=1.0", "--config.max_lr=0.1"], "min_lr"),
        ("lr_find", "smoothing_one", ["--config.smoothing=1.0"], "smoothing"),
        ("compare_optimizers", "unknown_optimizer", ["--optimizers=adamm"], "adamm"),
        ("compare_optimizers", "lr_inf", ["--lr=adam:inf"], "adam"),
        ("compare_optimizers", "batch_zero", ["--batch_size=0"], "batch_size"),
        ("compare_regularizers", "unknown_method", ["--methods=dropoutt"], "dropoutt"),
        ("compare_regularizers", "drop_rate_one", ["--config.drop_rate=1.0"], "drop_rate"),
        ("rl", "unknown_algorithm", ["--algorithms=dqnn"], "dqnn"),
        ("rl", "unknown_env", ["--env=NoSuchEnv-v0"], "NoSuchEnv"),
        ("rl", "discount_above_one", ["--config.dqn.discount=1.5"], "discount"),
        ("generative", "unknown_model", ["--config.models=vaee"], "vaee"),
        ("generative", "temperature_zero", ["--config.temperature=0.0"], "temperature"),
        ("visualize", "unknown_dataset", ["--config.datasets=('nope',)"], "nope"),
        ("detection", "iou_above_one", ["--config.iou_threshold=1.5"], "iou_threshold"),
        ("detection", "unknown_model", ["--config.model=detr"], "model"),
        (
            "detection",
            "two_stage_iou_above_one",
            ["--config=experiments/detection/config.py:two_stage", "--config.two_stage.rpn_nms_iou=1.5"],
            "two_stage.rpn_nms_iou",
        ),
        ("captioning", "unknown_decoder", ["--config.decoders=('plainn',)"], "plainn"),
        ("segmentation", "batch_zero", ["--config.batch_size=0"], "batch_size"),
        ("localization", "unknown_box_loss", ["--config.box_loss=l3"], "box_loss"),
        ("transfer", "unknown_dataset", ["--config.dataset_b=nope"], "nope"),
        ("features", "unknown_block_norm", ["--config.block_norm=L7"], "block_norm"),
        ("claims", "unknown_claim", ["--config.claims=no_such_claim"], "no_such_claim"),
    ]
    return [CliCase(f"{m}-{k}", k, f"experiments.{m}.main", (wd(m), *a), 2, e) for m, k, a, e in rows]


def cases(root: str) -> list[CliCase]:
    """Every CLI case, for scratch directory ``root`` (see :func:`make_data_files`)."""
    out = []
    for main in MAINS:
        out.extend(_generic(main, root))
    return out + _multihost(root) + _train(root) + _resume(root) + _others(root)


def make_data_files(root: str) -> None:
    """The bad data files the cases point at (written with NumPy and PIL)."""
    import numpy as np  # noqa: PLC0415  kept out of the table's import for the worker's speed
    from PIL import Image  # noqa: PLC0415

    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1)).astype(np.float32)
    y = np.arange(40) % 4
    with open(os.path.join(root, "a_file"), "w") as f:
        f.write("not a directory\n")
    with open(os.path.join(root, "corrupt.npz"), "wb") as f:
        f.write(b"PK\x03\x04 truncated zip")
    np.savez(os.path.join(root, "pickled.npz"), x_train=np.array([x[0], "code"], dtype=object), y_train=y[:2])
    bad = x.copy()
    bad[7, 2, 3, 0] = np.nan
    np.savez(os.path.join(root, "nan.npz"), x_train=bad, y_train=y, x_test=x, y_test=y)
    np.savez(os.path.join(root, "negative.npz"), x_train=x, y_train=y - 1, x_test=x, y_test=y)
    np.savez(os.path.join(root, "float_label.npz"), x_train=x, y_train=y + 0.3, x_test=x, y_test=y)
    np.savez(os.path.join(root, "one_hot.npz"), x_train=x, y_train=np.eye(4)[y], x_test=x, y_test=y)
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = os.path.join(root, "folder", split, label)
            os.makedirs(folder, exist_ok=True)
            Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(os.path.join(folder, "ok.png"))
    with open(os.path.join(root, "folder", "train", "a", "broken.png"), "wb") as f:
        f.write(b"\x89PNG not really")
