"""Caption metrics: teacher-forced token accuracy, exact match and corpus BLEU-4.

BLEU (Papineni et al. 2002), as nltk's ``corpus_bleu`` with its defaults (no smoothing):

.. math::
    p_n = \\frac{\\sum_c \\sum_{g \\in c} \\min(\\#_c(g), \\max_r \\#_r(g))}{\\sum_c \\sum_{g \\in c} \\#_c(g)},
    \\quad BP = \\min(1, e^{1 - R / C}), \\quad
    \\mathrm{BLEU} = BP \\exp\\Big(\\sum_{n=1}^{4} \\tfrac14 \\log p_n\\Big),

with ``g`` the n-grams of a candidate ``c``, ``C`` the total candidate length and ``R`` the sum
of the reference lengths closest to each candidate's (the shorter on a tie). BLEU is 0 when
some :math:`p_n = 0`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jax231.types import Array, ArrayLike

PAD = 0


def token_accuracy(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Fraction of the non-``<pad>`` targets ``labels (N, T)`` that ``argmax logits (N, T, V)`` predicts."""
    labels = jnp.asarray(labels)
    mask = labels != PAD
    hits = (jnp.argmax(jnp.asarray(logits), axis=-1) == labels) & mask
    return jnp.sum(hits) / jnp.maximum(jnp.sum(mask), 1)


def exact_match(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Fraction of hypotheses equal to their reference, word for word."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(
            f"hypotheses: expected as many as the {len(references)} references (>= 1), got {len(hypotheses)}"
        )
    return float(np.mean([list(h) == list(r) for h, r in zip(hypotheses, references)]))


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(
    list_of_references: Sequence[Sequence[Sequence[str]]],
    hypotheses: Sequence[Sequence[str]],
    *,
    max_order: int = 4,
) -> float:
    """Corpus BLEU-``max_order`` of tokenised ``hypotheses`` against their lists of references.

    Args:
      list_of_references: for each hypothesis, one or more reference word lists.
      hypotheses: candidate word lists.
      max_order: highest n-gram order (4 for BLEU-4), uniform weights.

    Returns:
      BLEU in ``[0, 1]``.
    """
    if len(list_of_references) != len(hypotheses) or not hypotheses:
        raise ValueError(
            f"hypotheses: expected as many as the {len(list_of_references)} reference lists (>= 1), "
            f"got {len(hypotheses)}"
        )
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"max_order: expected an int >= 1, got {max_order!r}")
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for refs, hyp in zip(list_of_references, hypotheses):
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda r: (abs(r - len(hyp)), r))
        for n in range(1, max_order + 1):
            counts = _ngrams(hyp, n)
            clip: Counter = Counter()
            for r in refs:
                clip |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, clip[g]) for g, c in counts.items())
            totals[n - 1] += sum(counts.values())
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / max(hyp_len, 1))
    return brevity * math.exp(log_precision)
