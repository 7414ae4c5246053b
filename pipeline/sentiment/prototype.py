"""The day-one default: zero-shot sentiment from anchor phrases, no labelled data needed.

It compares each embedding with anchor phrases of each polarity written for this project in five
languages (``pipeline/resources/sentiment_anchors.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from pipeline.embed import Embedder, l2_normalise
from pipeline.errors import ConfigError, NotFittedError
from pipeline.model_store import new_manifest, read_manifest, version_id, write_manifest
from pipeline.sentiment.base import label_from_score

ANCHORS = Path(__file__).resolve().parent.parent / "resources" / "sentiment_anchors.yaml"


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

    name = "sentiment.prototype.v1"
    needs_texts = False

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
        """Version id recorded on every row (the model store's format): anchors, encoder and settings."""
        self._check()
        return version_id(
            "sentiment",
            "prototype",
            {"anchors": self.anchor_version_, "encoder": self.embedder_id_, **self._params()},
        )

    def _params(self) -> dict:
        return {"neutral_band": self.neutral_band, "mixed_band": self.mixed_band, "sharpness": self.sharpness}

    @property
    def source(self) -> str:
        """Supervision source: anchors written by the project, no labelled data."""
        return "zero_shot"

    def _check(self) -> None:
        if not hasattr(self, "direction_"):
            raise NotFittedError("PrototypeSentiment is not fitted: call fit(embedder) first.")

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Scores in -1..1 for each embedding row (``texts`` is accepted and ignored)."""
        self._check()
        if len(embeddings) == 0:
            return np.zeros(0)
        z = (np.asarray(embeddings, dtype=np.float32) @ self.direction_ - self.offset_) / self.scale_
        return np.tanh(self.sharpness * z).astype(float)

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (negative/neutral/positive) and scores for each embedding row."""
        scores = self.score(embeddings)
        return label_from_score(scores, self.neutral_band), scores

    def save(self, path: str | Path) -> Path:
        """Write the fitted direction and a manifest to the folder ``path``."""
        self._check()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "direction.npy", self.direction_)
        manifest = new_manifest(
            "sentiment",
            self.name,
            self.version,
            self.source,
            encoder={"model_id": self.embedder_id_},
            anchor_version=self.anchor_version_,
            params=self._params(),
            state={"offset": self.offset_, "scale": self.scale_},
        )
        write_manifest(out, manifest)
        return out

    @classmethod
    def load(cls, path: str | Path) -> PrototypeSentiment:
        """Read a model written by :meth:`save`."""
        folder = Path(path)
        manifest = read_manifest(folder, "sentiment")
        model = cls(**manifest["params"])
        model.direction_ = np.load(folder / "direction.npy", allow_pickle=False).astype(np.float32)
        model.offset_ = float(manifest["state"]["offset"])
        model.scale_ = float(manifest["state"]["scale"])
        model.embedder_id_ = manifest["encoder"]["model_id"]
        model.anchor_version_ = manifest["anchor_version"]
        return model
