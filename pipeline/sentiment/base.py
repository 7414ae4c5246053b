"""What every sentiment model shares: labels, the score convention, the model interface, lineage.

A sentiment model reads the embeddings the pipeline already computed (and, for models that need them,
the texts) and returns a score in -1..1 per text. Labels come from the score with one rule for every
model: ``positive`` at or above ``neutral_band``, ``negative`` at or below ``-neutral_band``, ``neutral``
between. Trained models place their decision thresholds exactly there (see :func:`proba_to_scores`), so
the label of a sentence, a tag and a response always agrees with its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

LABELS = ("negative", "neutral", "positive", "mixed")
"""Every label the pipeline writes ("mixed" only for responses whose sentences disagree)."""

POLARITIES = ("negative", "neutral", "positive")
"""The labels a model predicts for one text."""

SOURCES = ("zero_shot", "scores", "labels", "pretrained")
"""Supervision sources recorded with every run: no labelled data (anchors), the survey's own scores,
labelled data from a data scientist, or a pretrained classifier (transformers backend)."""


def label_from_score(scores: np.ndarray, neutral_band: float) -> np.ndarray:
    """Map scores in -1..1 to negative / neutral / positive."""
    scores = np.asarray(scores, dtype=float)
    out = np.full(scores.shape, "neutral", dtype=object)
    out[scores >= neutral_band] = "positive"
    out[scores <= -neutral_band] = "negative"
    return out


def combine_sentences(
    response_score: float, sentence_scores: Sequence[float], neutral_band: float, mixed_band: float
) -> tuple[str, float]:
    """Label a response from its own score and its sentences' scores.

    A response is "mixed" when at least one sentence is clearly positive and another clearly negative
    (beyond ``mixed_band``); its score then stays the whole-text score.
    """
    s = np.asarray(list(sentence_scores), dtype=float)
    if len(s) > 1 and (s >= mixed_band).any() and (s <= -mixed_band).any():
        return "mixed", float(response_score)
    return str(label_from_score(np.array([response_score]), neutral_band)[0]), float(response_score)


def proba_to_scores(
    proba: np.ndarray, classes: Sequence[str], bias: np.ndarray | None, neutral_band: float
) -> np.ndarray:
    """Turn class probabilities into scores in -1..1 whose band labels equal the model's decisions.

    The decision is the argmax of ``log(proba) + bias``. The score keeps the order of
    ``P(positive) - P(negative)`` inside each decided class and is moved into that class's range:
    ``[band, 1]`` for positive, ``(-band, band)`` for neutral, ``[-1, -band]`` for negative. Sorting texts
    by score therefore ranks them from most negative to most positive, and :func:`label_from_score`
    gives back exactly the model's decisions.

    Args:
        proba: (n, k) probabilities over ``classes``.
        classes: Subset of :data:`POLARITIES`, in the column order of ``proba``.
        bias: Per-class additive log-odds corrections (tuned for macro F1), or None.
        neutral_band: The band of :func:`label_from_score`.
    """
    proba = np.asarray(proba, dtype=float)
    n = len(proba)
    if n == 0:
        return np.zeros(0)
    col = {c: j for j, c in enumerate(classes)}
    p_pos = proba[:, col["positive"]] if "positive" in col else np.zeros(n)
    p_neg = proba[:, col["negative"]] if "negative" in col else np.zeros(n)
    raw = p_pos - p_neg
    logits = np.log(np.clip(proba, 1e-12, 1.0)) + (0.0 if bias is None else np.asarray(bias, dtype=float))
    decided = np.asarray(classes, dtype=object)[logits.argmax(1)]
    band = float(neutral_band)
    pos = band + (1.0 - band) * np.clip(raw, 0.0, 1.0)
    neg = -band - (1.0 - band) * np.clip(-raw, 0.0, 1.0)
    neu = np.clip(raw, -1.0, 1.0) * band * 0.999
    return np.where(decided == "positive", pos, np.where(decided == "negative", neg, neu)).astype(float)


@runtime_checkable
class SentimentModel(Protocol):
    """The interface the pipeline relies on; every sentiment backend implements it.

    Attributes:
        neutral_band: |score| below this is "neutral".
        mixed_band: sentence scores beyond +-this make a response "mixed" when they disagree.
        needs_texts: True when ``score`` needs the raw texts besides the embeddings.
        version: Recorded on every enriched row.
        source: The supervision source, one of :data:`SOURCES`.
    """

    neutral_band: float
    mixed_band: float
    needs_texts: bool

    @property
    def version(self) -> str: ...

    @property
    def source(self) -> str: ...

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Scores in -1..1, one per row of ``embeddings`` (and item of ``texts``)."""
        ...

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (negative/neutral/positive) and scores."""
        ...
