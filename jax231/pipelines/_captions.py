"""Captioned digit canvases: exact captions such as ``"three digits: 4 7 1"`` (left to right).

Each canvas holds 1 to ``max_objects`` scikit-learn digits, upscaled by an integer factor
(nearest neighbour) and laid out in a row so that **the left-to-right order is exact by
construction**: the visible columns of the digits (the columns where a digit has a pixel > 0,
its *x-extent* ``[x0, x1)``) are disjoint and separated by at least ``min_gap`` empty columns,

``x1_k + min_gap <= x0_{k+1}``  for consecutive digits ``k, k + 1``,

so "left to right" is the order of the extents, with no tie and no overlap (vertical
positions are free). A canvas of ``n`` digits of widths ``w_k`` leaves
``slack = canvas_size - sum_k w_k - (n - 1) min_gap >= 0`` free columns (glyphs and scales are
redrawn until it does), spread uniformly over the ``n + 1`` margins (sorted uniform cuts).
Canvas ``i`` is drawn from ``np.random.default_rng([seed, i])`` alone: same seed, same arrays.

The caption is turned into token ids of a fixed length:

``<start> three digits: 4 7 1 <end> <pad> ...`` -- ``max_length(max_objects) = max_objects + 4``.

Token ids are the positions in :data:`WORDS`: ``<pad> = 0``, ``<start> = 1``, ``<end> = 2``.
(The detection canvases of :mod:`jax231.pipelines._canvas` order digits by box centre and
let them stack vertically, where "left to right" is ill-defined for about 4% of them.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jax231.pipelines import _sources

PAD, START, END = 0, 1, 2
"""Ids of the special tokens."""
NUMBER_WORDS = ("one", "two", "three", "four")
"""Count words; a caption names at most ``len(NUMBER_WORDS)`` digits."""
WORDS = ("<pad>", "<start>", "<end>", *NUMBER_WORDS, "digit:", "digits:", *(str(d) for d in range(10)))
"""The vocabulary; a word's id is its index."""
WORD_IDS = {word: i for i, word in enumerate(WORDS)}
VOCAB_SIZE = len(WORDS)
MIN_GAP = 2
"""Default empty columns between the x-extents of neighbouring digits."""


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


def _visible_crops(glyphs: np.ndarray, scales: Sequence[int]) -> dict[int, list[np.ndarray]]:
    """``{factor: [glyph upscaled by factor, cropped to its columns with a pixel > 0]}``."""
    crops: dict[int, list[np.ndarray]] = {}
    for factor in sorted({int(f) for f in scales}):
        crops[factor] = []
        for glyph in glyphs:
            big = np.kron(glyph, np.ones((factor, factor), np.float32))
            cols = np.flatnonzero(big.max(axis=0) > 0)
            crops[factor].append(big[:, cols[0] : cols[-1] + 1])
    return crops


def _row_canvas(
    rng: np.random.Generator,
    crops: dict[int, list[np.ndarray]],
    labels: np.ndarray,
    *,
    num_objects: int,
    canvas_size: int,
    min_gap: int,
    attempts: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One canvas of ``num_objects`` digits in a row (the rule of the module docstring).

    Returns:
      ``(image (H, W) float32, labels (n,) left to right, extents (n, 2) [x0, x1) left to right)``.
    """
    scales = tuple(crops)
    for _ in range(attempts):
        picks = rng.integers(0, len(labels), size=num_objects)
        factors = rng.choice(np.asarray(scales, int), size=num_objects)
        # Each glyph is cropped to its visible columns: its width is its x-extent.
        row = [crops[int(f)][p] for p, f in zip(picks, factors)]
        widths = np.array([c.shape[1] for c in row])
        slack = canvas_size - int(widths.sum()) - (num_objects - 1) * min_gap
        if slack >= 0:
            break
    else:
        raise ValueError(
            f"max_objects: expected as many digits as fit in a row of {canvas_size} pixels "
            f"at scales {tuple(scales)} with gaps of {min_gap}, got {num_objects}"
        )
    # x0_k = c_k + sum_{j<k} w_j + k min_gap with sorted cuts c_k in [0, slack]: gap_k = c_k - c_{k-1} + min_gap.
    cuts = np.sort(rng.integers(0, slack + 1, size=num_objects))
    x0 = cuts + np.concatenate([[0], np.cumsum(widths)[:-1]]) + np.arange(num_objects) * min_gap
    image = np.zeros((canvas_size, canvas_size), np.float32)
    for crop, x in zip(row, x0):
        y = int(rng.integers(0, canvas_size - crop.shape[0] + 1))
        image[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return image, np.asarray(labels, np.int32)[picks], np.stack([x0, x0 + widths], axis=1).astype(np.int32)


def caption_dataset(
    *,
    split: str,
    num_canvases: int,
    seed: int,
    canvas_size: int = 48,
    min_objects: int = 1,
    max_objects: int = 3,
    scales: Sequence[int] = (2, 3),
    min_gap: int = MIN_GAP,
) -> dict[str, np.ndarray]:
    """Captioned canvases of the scikit-learn digits of ``split`` (train and test glyphs are disjoint).

    Args:
      split: ``'train'`` or ``'test'`` (which digits the canvases are made of).
      num_canvases: canvases to draw (>= 1).
      seed: the dataset's seed (canvas ``i`` uses ``default_rng([seed, i])``).
      canvas_size: side of the square canvases.
      min_objects, max_objects: the number of digits is uniform in this range (at most
        ``len(NUMBER_WORDS)`` = 4).
      scales: integer upscaling factors of the 8x8 glyphs (drawn uniformly; redrawn when a
        row does not fit, so rows of many digits favour the small scales).
      min_gap: empty columns between the x-extents of neighbouring digits (>= 0).

    Returns:
      ``{'image': (N, H, W, 1) float32, 'caption': (N, max_objects + 4) int32 ids,
      'digits': (N, max_objects) int32 left to right (-1 as padding), 'num_objects': (N,),
      'extents': (N, max_objects, 2) int32 ``[x0, x1)`` of each digit left to right (-1 pad)}``.
    """
    _check("split", split in ("train", "test"), "'train' or 'test'", split)
    _check(
        "num_canvases", isinstance(num_canvases, (int, np.integer)) and num_canvases >= 1, "an int >= 1", num_canvases
    )
    _check("min_gap", isinstance(min_gap, (int, np.integer)) and min_gap >= 0, "an int >= 0", min_gap)
    _check("scales", len(scales) > 0 and all(int(f) >= 1 for f in scales), "positive integer factors", scales)
    length = max_length(max_objects)
    _check("min_objects", 1 <= min_objects <= max_objects, f"an int in [1, max_objects = {max_objects}]", min_objects)
    glyphs, glyph_labels = _sources.digits_raw()[split]
    crops = _visible_crops(np.asarray(glyphs, np.float32)[..., 0], scales)
    n = int(num_canvases)
    images = np.zeros((n, canvas_size, canvas_size, 1), np.float32)
    digits = np.full((n, max_objects), -1, np.int32)
    extents = np.full((n, max_objects, 2), -1, np.int32)
    counts = np.zeros((n,), np.int32)
    captions = np.zeros((n, length), np.int32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        count = int(rng.integers(min_objects, max_objects + 1))
        image, row, spans = _row_canvas(
            rng, crops, glyph_labels, num_objects=count, canvas_size=canvas_size, min_gap=min_gap
        )
        images[i, ..., 0], digits[i, :count], extents[i, :count], counts[i] = image, row, spans, count
        captions[i] = encode_caption(caption_text(row.tolist()), length)
    return {"image": images, "caption": captions, "digits": digits, "num_objects": counts, "extents": extents}
