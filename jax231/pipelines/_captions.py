"""Captioned digit canvases: exact captions such as ``"three digits: 4 7 1"`` (left to right).

The images come from :func:`jax231.pipelines._canvas.make_canvases` (the composer of the
detection datasets); this module only turns each canvas's labels, in their left-to-right
``order``, into a caption and the caption into token ids of a fixed length:

``<start> three digits: 4 7 1 <end> <pad> ...`` -- ``max_length(max_objects) = max_objects + 4``.

Token ids are the positions in :data:`WORDS`: ``<pad> = 0``, ``<start> = 1``, ``<end> = 2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jax231.pipelines import _canvas, _sources

PAD, START, END = 0, 1, 2
"""Ids of the special tokens."""
NUMBER_WORDS = ("one", "two", "three", "four")
"""Count words; a caption names at most ``len(NUMBER_WORDS)`` digits."""
WORDS = ("<pad>", "<start>", "<end>", *NUMBER_WORDS, "digit:", "digits:", *(str(d) for d in range(10)))
"""The vocabulary; a word's id is its index."""
WORD_IDS = {word: i for i, word in enumerate(WORDS)}
VOCAB_SIZE = len(WORDS)


def _check(name: str, ok: bool, expected: str, got) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {got!r}")


def max_length(max_objects: int) -> int:
    """Tokens of the longest caption with ``<start>`` and ``<end>``: ``max_objects + 4``."""
    _check(
        "max_objects",
        isinstance(max_objects, (int, np.integer)) and 1 <= max_objects <= len(NUMBER_WORDS),
        f"an int in [1, {len(NUMBER_WORDS)}]",
        max_objects,
    )
    return int(max_objects) + 4


def caption_text(digits: Sequence[int]) -> str:
    """The caption of digits read left to right: ``[4, 7, 1] -> "three digits: 4 7 1"``."""
    digits = [int(d) for d in digits]
    _check(
        "digits",
        1 <= len(digits) <= len(NUMBER_WORDS) and all(0 <= d <= 9 for d in digits),
        f"1 to {len(NUMBER_WORDS)} digits in [0, 9]",
        digits,
    )
    noun = "digit:" if len(digits) == 1 else "digits:"
    return " ".join([NUMBER_WORDS[len(digits) - 1], noun, *map(str, digits)])


def encode_caption(text: str, length: int) -> np.ndarray:
    """``text`` as ``(length,)`` int32 ids: ``<start>``, its words, ``<end>``, then ``<pad>``."""
    words = text.split()
    unknown = [w for w in words if w not in WORD_IDS or WORD_IDS[w] <= END]
    _check("text", not unknown, f"words of the vocabulary {WORDS[END + 1 :]}", text)
    _check("length", len(words) + 2 <= length, f"at least {len(words) + 2} tokens for {text!r}", length)
    ids = np.full((length,), PAD, np.int32)
    ids[: len(words) + 2] = [START, *(WORD_IDS[w] for w in words), END]
    return ids


def decode_caption(ids: Sequence[int]) -> str:
    """The words of ``ids`` after a leading ``<start>`` and before the first ``<end>`` (pads dropped)."""
    words = []
    for i, token in enumerate(int(t) for t in ids):
        if token == END:
            break
        if token == PAD or (token == START and i == 0):
            continue
        words.append(WORDS[token])
    return " ".join(words)


def caption_dataset(
    *,
    split: str,
    num_canvases: int,
    seed: int,
    canvas_size: int = 48,
    min_objects: int = 1,
    max_objects: int = 3,
    scales: Sequence[int] = (2, 3),
) -> dict[str, np.ndarray]:
    """Captioned canvases of the scikit-learn digits of ``split`` (train and test glyphs are disjoint).

    Args:
      split: ``'train'`` or ``'test'`` (which digits the canvases are made of).
      num_canvases, seed, canvas_size, min_objects, scales: as in ``make_canvases``.
      max_objects: at most ``len(NUMBER_WORDS)`` = 4 digits per canvas.

    Returns:
      ``{'image': (N, H, W, 1) float32, 'caption': (N, max_objects + 4) int32 ids,
      'digits': (N, max_objects) int32 left to right (-1 as padding), 'num_objects': (N,)}``.
    """
    _check("split", split in ("train", "test"), "'train' or 'test'", split)
    length = max_length(max_objects)
    images, labels = _sources.digits_raw()[split]
    canvases = _canvas.make_canvases(
        images,
        labels,
        num_canvases=num_canvases,
        seed=seed,
        canvas_size=canvas_size,
        min_objects=min_objects,
        max_objects=max_objects,
        scales=scales,
    )
    digits = np.full((num_canvases, max_objects), -1, np.int32)
    captions = np.zeros((num_canvases, length), np.int32)
    for i, (classes, order, count) in enumerate(zip(canvases["classes"], canvases["order"], canvases["num_objects"])):
        digits[i, :count] = classes[order[:count]]
        captions[i] = encode_caption(caption_text(digits[i, :count].tolist()), length)
    return {"image": canvases["image"], "caption": captions, "digits": digits, "num_objects": canvases["num_objects"]}
