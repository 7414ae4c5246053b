"""Sentiment over embeddings: a label (negative/neutral/positive/mixed) and a score in -1..1.

The day-one default needs no labelled data: it compares each embedding with anchor phrases of each
polarity written for this project in five languages (``pipeline/resources/sentiment_anchors.yaml``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from pipeline.embed import Embedder, l2_normalise
from pipeline.errors import ConfigError, NotFittedError, UnknownComponentError

log = logging.getLogger(__name__)

ANCHORS = Path(__file__).resolve().parent / "resources" / "sentiment_anchors.yaml"
LABELS = ("negative", "neutral", "positive", "mixed")


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


class PrototypeSentiment:
    """Zero-shot sentiment from polarity anchors.

    The score is the projection of an embedding on the direction from the negative to the positive
    anchor centroid, centred between the two and squashed by ``tanh`` so that anchors land near +-1.

    Args:
        anchors: YAML file of anchor phrases per polarity and language.
        neutral_band: |score| below this is "neutral".
        mixed_band: sentence scores beyond +-this make a response "mixed" when they disagree.
        sharpness: multiplies the standardised projection before tanh.
    """

    def __init__(
        self,
        anchors: str | Path = ANCHORS,
        neutral_band: float = 0.25,
        mixed_band: float = 0.35,
        sharpness: float = 1.0,
    ) -> None:
        self.anchors = anchors
        self.neutral_band = neutral_band
        self.mixed_band = mixed_band
        self.sharpness = sharpness

    def fit(self, embedder: Embedder) -> PrototypeSentiment:
        """Embed the anchors with ``embedder`` and derive the polarity direction."""
        raw = yaml.safe_load(Path(self.anchors).read_text(encoding="utf-8"))
        try:
            pos = [t for texts in raw["positive"].values() for t in texts]
            neg = [t for texts in raw["negative"].values() for t in texts]
        except (KeyError, AttributeError) as exc:
            raise ConfigError(
                f"{self.anchors}: expected 'positive' and 'negative' maps of lang -> phrases"
            ) from exc
        vp, vn = embedder.embed(pos), embedder.embed(neg)
        cp, cn = l2_normalise(vp.mean(0, keepdims=True))[0], l2_normalise(vn.mean(0, keepdims=True))[0]
        direction = cp - cn
        mid = float(((cp + cn) / 2) @ direction)
        proj = np.concatenate([vp @ direction, vn @ direction]) - mid
        self.direction_ = direction.astype(np.float32)
        self.offset_ = mid
        self.scale_ = float(np.mean(np.abs(proj))) or 1.0
        self.embedder_id_ = embedder.model_id
        self.anchor_version_ = str(raw.get("version", "0"))
        return self

    @property
    def version(self) -> str:
        """Version string recorded on every row."""
        self._check()
        return f"prototype-{self.anchor_version_}-{self.embedder_id_}"

    def _check(self) -> None:
        if not hasattr(self, "direction_"):
            raise NotFittedError("PrototypeSentiment is not fitted: call fit(embedder) first.")

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores in -1..1 for each embedding row."""
        self._check()
        if len(embeddings) == 0:
            return np.zeros(0)
        z = (np.asarray(embeddings, dtype=np.float32) @ self.direction_ - self.offset_) / self.scale_
        return np.tanh(self.sharpness * z).astype(float)

    def predict(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (negative/neutral/positive) and scores for each embedding row."""
        scores = self.score(embeddings)
        return label_from_score(scores, self.neutral_band), scores


SENTIMENT_MODELS = {"sentiment.prototype.v1": PrototypeSentiment}


def build_sentiment(name: str, **options: object) -> PrototypeSentiment:
    """Create a sentiment model from its registered name."""
    if name not in SENTIMENT_MODELS:
        raise UnknownComponentError(
            f"Unknown sentiment model {name!r}. Valid names: {sorted(SENTIMENT_MODELS)}"
        )
    return SENTIMENT_MODELS[name](**options)  # type: ignore[arg-type]
