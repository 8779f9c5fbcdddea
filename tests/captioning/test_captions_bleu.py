"""Caption builder (determinism, round trip, left-to-right order) and BLEU-4 / exact match / token accuracy.

References: BLEU-4 against a NumPy float64 transcription (n-gram counts by ``np.unique`` over
sliding windows), hand-computed values, and nltk's documented ``corpus_bleu`` example
(0.5920778868801042 in nltk's docstring); nltk itself is not installed here, so the live
comparison runs only when it is importable.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from jax231 import captioning, pipelines
from jax231.pipelines import _captions


def _words(text: str) -> list[str]:
    return text.split()


HYP1 = _words("It is a guide to action which ensures that the military always obeys the commands of the party")
REF1A = _words("It is a guide to action that ensures that the military will forever heed Party commands")
REF1B = _words(
    "It is the guiding principle which guarantees the military forces always being under the command of the Party"
)
REF1C = _words("It is the practical guide for the army always to heed the directions of the party")
HYP2 = _words("he read the book because he was interested in world history")
REF2A = _words("he was interested in world history because he read the book")
NLTK_EXAMPLE = ([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2])


def _numpy_bleu(list_of_references, hypotheses, max_order=4):
    """Float64 transcription: n-gram counts from np.unique over integer-coded sliding windows."""
    vocab = {
        w: i for i, w in enumerate(sorted({w for s in itertools.chain(hypotheses, *list_of_references) for w in s}))
    }

    def counts(words, n):
        ids = np.asarray([vocab[w] for w in words], np.int64)
        if len(ids) < n:
            return {}
        grams, num = np.unique(np.lib.stride_tricks.sliding_window_view(ids, n), axis=0, return_counts=True)
        return {tuple(g): int(c) for g, c in zip(grams, num)}

    matches, totals = np.zeros(max_order, np.float64), np.zeros(max_order, np.float64)
    c_len = r_len = 0.0
    for refs, hyp in zip(list_of_references, hypotheses):
        lengths = np.asarray([len(r) for r in refs])
        c_len += len(hyp)
        r_len += lengths[np.lexsort((lengths, np.abs(lengths - len(hyp))))[0]]
        for n in range(1, max_order + 1):
            hyp_counts, ref_counts = counts(hyp, n), [counts(r, n) for r in refs]
            matches[n - 1] += sum(min(c, max(rc.get(g, 0) for rc in ref_counts)) for g, c in hyp_counts.items())
            totals[n - 1] += sum(hyp_counts.values())
    if np.any(matches == 0):
        return 0.0
    bp = 1.0 if c_len > r_len else np.exp(1.0 - r_len / c_len)
    return float(bp * np.exp(np.mean(np.log(matches / totals))))


CASES = [
    ([[["a", "b", "c", "d", "e"]]], [["a", "b", "c", "d", "e"]], 1.0),
    ([[["a", "b", "c", "d", "f"]]], [["a", "b", "c", "d", "e"]], (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25),
    ([[["a", "b", "c", "d", "e", "f"]]], [["a", "b", "c", "d"]], math.exp(1 - 6 / 4)),
    ([[["a", "b", "c", "d"]]], [["a", "b", "x", "d"]], 0.0),  # no matching 3- or 4-gram
    (*NLTK_EXAMPLE, 0.5920778868801042),
]


@pytest.mark.parametrize("refs,hyps,expected", CASES)
def test_bleu4_known_values_and_numpy_transcription(refs, hyps, expected):
    value = captioning.corpus_bleu(refs, hyps)
    # Tolerance: both sides are float64 sums of the same counts; 1e-12 covers summation order.
    assert value == pytest.approx(expected, abs=1e-12)
    assert value == pytest.approx(_numpy_bleu(refs, hyps), abs=1e-12)


def test_bleu4_against_nltk_when_installed():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score", reason="nltk is not installed in this environment")
    refs, hyps = NLTK_EXAMPLE
    assert captioning.corpus_bleu(refs, hyps) == pytest.approx(nltk_bleu.corpus_bleu(refs, hyps), abs=1e-12)


def test_exact_match_and_token_accuracy():
    assert captioning.exact_match([["a", "b"], ["c"]], [["a", "b"], ["d"]]) == 0.5
    labels = np.array([[3, 4, 2, 0], [5, 2, 0, 0]])
    logits = np.eye(6)[np.array([[3, 1, 2, 2], [5, 0, 4, 4]])]  # hits: 3, 2 | 5 (pads ignored)
    assert float(captioning.token_accuracy(logits=logits, labels=labels)) == pytest.approx(3 / 5)


def test_caption_dataset_deterministic_roundtrip_and_left_to_right():
    a = pipelines.caption_dataset(split="test", num_canvases=24, seed=3, max_objects=3)
    b = pipelines.caption_dataset(split="test", num_canvases=24, seed=3, max_objects=3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["caption"].shape == (24, 7) and a["image"].shape == (24, 48, 48, 1)
    assert set(np.unique(a["num_objects"])) <= {1, 2, 3} and len(set(a["num_objects"])) > 1
    for ids, digits, count in zip(a["caption"], a["digits"], a["num_objects"]):
        text = pipelines.decode_caption(ids)
        words = text.split()
        assert words[0] == _captions.NUMBER_WORDS[count - 1] and [int(w) for w in words[2:]] == list(digits[:count])
        np.testing.assert_array_equal(pipelines.encode_caption(text, 7), ids)
    c = pipelines.caption_dataset(split="test", num_canvases=24, seed=4, max_objects=3)
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("min_gap,scales", [(2, (2, 3)), (0, (3,)), (5, (2,))])
def test_every_canvas_has_disjoint_x_extents_in_caption_order(min_gap, scales):
    """The rule of the docstring, checked on the pixels: ink columns are the extents, apart by >= min_gap."""
    data = pipelines.caption_dataset(
        split="train", num_canvases=300, seed=7, max_objects=3, min_gap=min_gap, scales=scales
    )
    assert set(np.unique(data["num_objects"])) == {1, 2, 3}
    glyphs, labels = _captions._sources.digits_raw()["train"]
    # Every (upscaled glyph, its digit), trimmed to its ink, keyed by its bytes: what an extent may hold.
    known = {}
    for factor in scales:
        for glyph, label in zip(glyphs[..., 0], labels):
            known.setdefault(_trimmed(np.kron(glyph, np.ones((factor, factor), np.float32))), set()).add(int(label))
    for image, extents, digits, count in zip(data["image"], data["extents"], data["digits"], data["num_objects"]):
        spans = extents[:count]
        assert np.all(spans[:, 1] > spans[:, 0]) and np.all(spans[1:, 0] - spans[:-1, 1] >= min_gap)
        assert np.all(spans >= 0) and np.all(spans <= 48) and np.all(extents[count:] == -1)
        ink = image[..., 0].max(axis=0) > 0
        inside = np.zeros(48, bool)
        for x0, x1 in spans:
            inside[x0:x1] = True
            assert ink[x0] and ink[x1 - 1]  # an extent is tight: it starts and ends on ink
        np.testing.assert_array_equal(ink & ~inside, np.zeros(48, bool))  # no ink outside the extents
        for (x0, x1), digit in zip(spans, digits[:count]):
            # The extent holds one upscaled training glyph of the caption's digit (the caption is exact).
            assert int(digit) in known[_trimmed(image[:, x0:x1, 0])]


def _trimmed(picture: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    """``picture`` cropped to its ink's bounding box, as a hashable ``(shape, bytes)``."""
    rows, cols = np.flatnonzero(picture.max(axis=1) > 0), np.flatnonzero(picture.max(axis=0) > 0)
    crop = np.ascontiguousarray(picture[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], np.float32)
    return crop.shape, crop.tobytes()


def test_every_caption_round_trips():
    rng = np.random.default_rng(0)
    for count in range(1, 5):
        cases = itertools.product(range(10), repeat=count) if count <= 2 else rng.integers(0, 10, (200, count))
        for digits in cases:
            text = pipelines.caption_text(digits)
            assert pipelines.decode_caption(pipelines.encode_caption(text, 8)) == text
    assert pipelines.caption_text([4, 7, 1]) == "three digits: 4 7 1"
    assert pipelines.caption_text([5]) == "one digit: 5"


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: pipelines.encode_caption("three cats: 1", 8), "text"),
        (lambda: pipelines.encode_caption("three digits: 4 7 1", 5), "length"),
        (lambda: pipelines.caption_text([1, 2, 3, 4, 5]), "digits"),
        (lambda: pipelines.caption_dataset(split="val", num_canvases=2, seed=0), "split"),
        (lambda: pipelines.caption_dataset(split="test", num_canvases=2, seed=0, max_objects=5), "max_objects"),
        (lambda: pipelines.caption_dataset(split="test", num_canvases=2, seed=0, min_gap=-1), "min_gap"),
        (lambda: pipelines.caption_dataset(split="test", num_canvases=0, seed=0), "num_canvases"),
        (
            lambda: pipelines.caption_dataset(split="test", num_canvases=2, seed=0, max_objects=4, scales=(6,)),
            "max_objects",
        ),
        (lambda: captioning.corpus_bleu([[["a"]]], []), "hypotheses"),
    ],
)
def test_bad_input_one_line_value_error(call, name):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value).startswith(f"{name}: expected") and "\n" not in str(err.value)
