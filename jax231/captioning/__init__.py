"""Image captioning (lecture 10, assignment 3): metrics and the teacher-forced training loop.

The model is :func:`jax231.models.captioner`; the captioned canvases are
:func:`jax231.pipelines.caption_dataset` (with ``encode``/``decode`` of the caption tokens).

* :func:`train_captioner`: compiled chunks of Adam (or any optimizer) updates by teacher forcing.
* :func:`token_accuracy`, :func:`exact_match`, :func:`corpus_bleu` (BLEU-4 by default).
"""

from jax231.captioning._metrics import corpus_bleu, exact_match, token_accuracy
from jax231.captioning._train import CaptionTrainResult, train_captioner

__all__ = ["CaptionTrainResult", "corpus_bleu", "exact_match", "token_accuracy", "train_captioner"]
