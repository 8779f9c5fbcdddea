"""Library functions of the captioning experiment: data, models, training, evaluation, report."""

from __future__ import annotations

import pathlib
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import _common
from experiments.captioning import figures
from jax231 import captioning, models, optimizers, pipelines, training

DECODERS = ("plain", "attention")


class CaptioningRun(NamedTuple):
    """What :func:`run` returns: one metrics row per (decoder, decoding), the trained params, timing.

    ``encoder_accuracy``: test accuracy of the pretrained encoder on single-digit canvases (None
    without pretraining).
    """

    rows: list[dict[str, Any]]
    params: dict[str, Any]
    history: dict[str, dict[str, list]]
    seconds: float
    encoder_accuracy: float | None = None


def _usage(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise _common.UsageError(f"--config.{err}") from None


def load_data(config: ml_collections.ConfigDict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The training and test canvases with their captions (train and test digits are disjoint)."""
    common = {"canvas_size": config.canvas_size, "max_objects": config.max_objects, "min_gap": config.min_gap}
    train = _usage(pipelines.caption_dataset, split="train", num_canvases=config.train_size, seed=config.seed, **common)
    test = _usage(
        pipelines.caption_dataset, split="test", num_canvases=config.test_size, seed=config.seed + 1000, **common
    )
    return train, test


def build(config: ml_collections.ConfigDict, decoder: str, encoder: Any = None) -> models.Captioner:
    """The captioner of ``decoder`` (``'plain'`` or ``'attention'``), its encoder set to ``encoder`` if given."""
    if decoder not in DECODERS:
        raise _common.UsageError(f"--config.decoders: expected names in {DECODERS}, got {decoder!r}")
    model = _usage(
        models.captioner,
        image_shape=(config.canvas_size, config.canvas_size, 1),
        vocab_size=len(pipelines.CAPTION_WORDS),
        max_length=config.max_objects + 4,
        widths=tuple(config.widths),
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        cell=config.cell,
        attention=decoder == "attention",
        attention_dim=config.attention_dim,
        positions=config.positions,
    )
    if encoder is None:
        return model
    # A fresh copy per init: the training loop donates (deletes) the parameters it is given.
    return model._replace(init=lambda rng: {**model.init(rng), "encoder": jax.tree_util.tree_map(jnp.copy, encoder)})


def pretrain_encoder(config: ml_collections.ConfigDict) -> tuple[Any, float]:
    """The encoder trained as a classifier of single-digit canvases of the training digits (``training.fit``).

    Returns:
      ``(params['encoder'], test accuracy on single-digit canvases of the held-out digits)``.
    """

    def digits(split: str, num: int, seed: int) -> dict[str, np.ndarray]:
        data = pipelines.caption_dataset(
            split=split, num_canvases=num, seed=seed, canvas_size=config.canvas_size, max_objects=1
        )
        return {"image": data["image"], "label": data["digits"][:, 0]}

    train, test = (
        digits("train", config.pretrain_size, config.seed + 2000),
        digits("test", config.test_size, config.seed + 3000),
    )
    model = _usage(
        models.encoder_classifier,
        image_shape=(config.canvas_size, config.canvas_size, 1),
        widths=tuple(config.widths),
        num_classes=10,
    )
    schedule = optimizers.schedules.cosine_decay(config.learning_rate, decay_steps=config.pretrain_steps)
    result = training.fit(
        model,
        optimizers.adam(learning_rate=schedule),
        train=train,
        num_steps=config.pretrain_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        eval_every=config.pretrain_steps,
        check_initial_loss=False,
    )
    metrics = training.evaluate(
        training.make_eval_step(model), result.state, test, batch_size=min(500, config.test_size)
    )
    return result.state.params["encoder"], float(metrics["accuracy"])


def check_config(config: ml_collections.ConfigDict) -> None:
    for t in config.temperatures:
        try:
            models.check_temperature(t)
        except ValueError:
            raise _common.UsageError(
                f"--config.temperatures: expected floats > 0, got {tuple(config.temperatures)}"
            ) from None
    for name in ("num_steps", "batch_size", "eval_every", "num_examples", "pretrain_size"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _common.UsageError(f"--config.{name}: expected an int >= 1, got {value!r}")
    if (
        isinstance(config.pretrain_steps, bool)
        or not isinstance(config.pretrain_steps, int)
        or config.pretrain_steps < 0
    ):
        raise _common.UsageError(f"--config.pretrain_steps: expected an int >= 0, got {config.pretrain_steps!r}")
    for decoder in config.decoders:
        build(config, decoder)


def generate(model, params, images: np.ndarray, *, temperature: float | None, seed: int, batch_size: int = 250):
    """Tokens and attention weights of ``images``, greedy or sampled at ``temperature``."""
    sample = jax.jit(lambda p, x, k: model.sample(p, x, temperature=temperature, rng=k))
    tokens, alphas = [], []
    for i, start in enumerate(range(0, len(images), batch_size)):
        out = sample(params, images[start : start + batch_size], jax.random.PRNGKey(seed + i))
        tokens.append(np.asarray(out.tokens))
        alphas.append(np.asarray(out.attention))
    return np.concatenate(tokens), np.concatenate(alphas)


def evaluate(model, params, test: dict[str, np.ndarray], config) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Teacher-forced token accuracy, then exact match and BLEU-4 of greedy and temperature decoding.

    Returns the metric rows and ``{decoding: tokens}`` plus ``'greedy_attention'``, the greedy attention weights.
    """
    logits = jax.jit(model.apply)(params, test["image"], test["caption"])
    token_acc = float(captioning.token_accuracy(logits=logits, labels=jnp.asarray(test["caption"])[:, 1:]))
    references = [pipelines.decode_caption(c).split() for c in test["caption"]]
    rows, tokens = [], {}
    for temperature in (None, *config.temperatures):
        name = "greedy" if temperature is None else f"T={temperature:g}"
        tokens[name], alphas = generate(model, params, test["image"], temperature=temperature, seed=config.seed)
        if temperature is None:
            tokens["greedy_attention"] = alphas
        hypotheses = [pipelines.decode_caption(t).split() for t in tokens[name]]
        rows.append(
            {
                "decoding": name,
                "token_accuracy": token_acc,
                "exact_match": captioning.exact_match(hypotheses, references),
                "bleu4": captioning.corpus_bleu([[r] for r in references], hypotheses),
            }
        )
    return rows, tokens


def error_breakdown(tokens: np.ndarray, test: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Where greedy captions go wrong, per number of digits ``n`` (and ``'all'``).

    ``count_accuracy``: the count word is right; ``digit_accuracy``: digits right at their
    position, among captions whose count is right (so ``digit_accuracy ** n`` is about the
    exact match a decoder with independent digit errors reaches).
    """
    rows = []
    words = [pipelines.decode_caption(t).split() for t in tokens]
    for n in [*np.unique(test["num_objects"]).tolist(), "all"]:
        idx = np.arange(len(words)) if n == "all" else np.flatnonzero(test["num_objects"] == n)
        count_ok, exact, hits, total = 0, 0, 0, 0
        for i in idx:
            count = int(test["num_objects"][i])
            truth = pipelines.decode_caption(test["caption"][i]).split()
            exact += words[i] == truth
            if words[i][:1] == truth[:1]:
                count_ok += 1
                hits += sum(a == b for a, b in zip(words[i][2:], truth[2:]))
                total += count
        rows.append(
            {
                "digits": n,
                "canvases": len(idx),
                "exact_match": exact / len(idx),
                "count_accuracy": count_ok / len(idx),
                "digit_accuracy": hits / max(total, 1),
            }
        )
    return rows


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> CaptioningRun:
    """Trains each decoder of ``config.decoders``, evaluates it on the test canvases, writes the report."""
    workdir = pathlib.Path(workdir)
    check_config(config)
    train, test = load_data(config)
    start = time.monotonic()
    encoder, encoder_accuracy = pretrain_encoder(config) if config.pretrain_steps else (None, None)
    rows, params, history, tokens = [], {}, {}, {}
    for decoder in config.decoders:
        model = build(config, decoder, encoder)
        schedule = optimizers.schedules.cosine_decay(config.learning_rate, decay_steps=config.num_steps)
        result = captioning.train_captioner(
            model,
            optimizers.adam(learning_rate=schedule),
            train,
            num_steps=config.num_steps,
            batch_size=config.batch_size,
            seed=config.seed,
            eval_every=config.eval_every,
            progress=True,
            max_seconds=config.max_seconds or None,
        )
        decoder_rows, tokens[decoder] = evaluate(model, result.params, test, config)
        rows += [{"decoder": decoder, "updates": result.history["step"][-1], **r} for r in decoder_rows]
        params[decoder], history[decoder] = result.params, result.history
    out = CaptioningRun(rows, params, history, time.monotonic() - start, encoder_accuracy)
    write_report(workdir, config, out, test, tokens)
    return out


def write_report(workdir: pathlib.Path, config, out: CaptioningRun, test, tokens) -> None:
    columns = ["decoder", "decoding", "updates", "token_accuracy", "exact_match", "bleu4"]
    pretrained = (
        "no"
        if out.encoder_accuracy is None
        else f"{config.pretrain_steps} steps, {out.encoder_accuracy:.3f} test accuracy on single digits"
    )
    _common.write_tables(
        workdir,
        "summary",
        out.rows,
        columns=columns,
        title="Captioning the test canvases",
        notes=f"{len(test['image'])} test canvases of 1-{config.max_objects} digits; token accuracy "
        f"is teacher-forced; pretrained encoder: {pretrained}; {out.seconds:.0f} s on a "
        f"shared 2-core CPU",
    )
    breakdown = {d: error_breakdown(t["greedy"], test) for d, t in tokens.items()}
    _common.write_tables(
        workdir,
        "errors",
        [{"decoder": d, **row} for d, rows in breakdown.items() for row in rows],
        columns=["decoder", "digits", "canvases", "exact_match", "count_accuracy", "digit_accuracy"],
        title="Greedy captions: errors by number of digits",
        notes="digit_accuracy: digits right at their position among captions with the right count",
    )
    _common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "rows": out.rows,
            "seconds": out.seconds,
            "history": out.history,
            "encoder_accuracy": out.encoder_accuracy,
            "errors": breakdown,
            "greedy_tokens": {d: np.asarray(t["greedy"]).tolist() for d, t in tokens.items()},
        },
    )
    _common.plot_curves(
        workdir / "loss.png",
        {"training loss (summed CE per caption)": {d: (h["step"], [h["loss"]]) for d, h in out.history.items()}},
        ylabel="loss",
        logy=True,
    )
    figures.draw_captions(
        workdir / "captions.png",
        test,
        {d: t["greedy"] for d, t in tokens.items()},
        num=min(config.num_examples, len(test["image"])),
    )
    if "attention" in tokens:
        figures.draw_attention(
            workdir / "attention.png",
            test["image"][:4],
            tokens["attention"]["greedy"][:4],
            tokens["attention"]["greedy_attention"][:4],
        )
