"""Any Hugging Face sequence-classification model as a sentiment backend (torch, imported lazily).

For users with hub access (or a local copy): a model by hub name or local path whose labels say
negative / neutral / positive (or 1-5 stars) in ``config.id2label``. It reads texts, not embeddings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, MissingDependencyError, NotFittedError, SchemaError
from pipeline.model_store import new_manifest, read_manifest, version_id, write_manifest
from pipeline.sentiment.base import POLARITIES, label_from_score, proba_to_scores

log = logging.getLogger(__name__)

_STARS = re.compile(r"^\s*([1-5])\s*stars?\s*$")


def polarity_of_label(label: str) -> str | None:
    """Map a classifier's label name to a polarity: "NEGATIVE", "neg", "LABEL_neutral", "4 stars"...

    Returns None when the name says nothing about polarity (e.g. "LABEL_0").
    """
    text = str(label).strip().lower()
    stars = _STARS.match(text)
    if stars:
        n = int(stars.group(1))
        return "negative" if n <= 2 else "neutral" if n == 3 else "positive"
    for key, polarity in (("neg", "negative"), ("neu", "neutral"), ("pos", "positive")):
        if key in text:
            return polarity
    return None


def _torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "sentiment.transformers.v1 needs torch and transformers: pip install 'feedback-pipeline[torch]' "
            "(install the CPU build of torch first: pip install torch==2.13.0)."
        ) from exc
    return torch, transformers


class TransformersSentiment:
    """A pretrained sequence-classification model (by hub name or local path) behind the sentiment interface.

    Args:
        model: Hub name or local folder of a ``*ForSequenceClassification`` model.
        label_map: Optional {model label name or id: polarity} when ``config.id2label`` names are not
            self-explanatory (e.g. {"LABEL_0": "negative", "LABEL_1": "positive"}).
        batch_size: Texts per forward pass.
        max_length: Tokens kept per text.
        device: torch device ("cpu", "cuda").
        neutral_band: |score| below this is "neutral".
        mixed_band: Sentence scores beyond +-this make a response "mixed" when they disagree.
    """

    name = "sentiment.transformers.v1"
    needs_texts = True

    def __init__(
        self,
        model: str,
        label_map: Mapping[str, str] | None = None,
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "cpu",
        neutral_band: float = 0.25,
        mixed_band: float = 0.35,
    ) -> None:
        self.model = model
        self.label_map = dict(label_map) if label_map else None
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.neutral_band = neutral_band
        self.mixed_band = mixed_band

    def fit(self, embedder: object = None) -> TransformersSentiment:
        """Load the model and map its labels to polarities (nothing is learned; ``embedder`` is unused)."""
        torch, transformers = _torch()
        path = str(self.model)
        self.tokenizer_ = transformers.AutoTokenizer.from_pretrained(path)
        self.model_ = transformers.AutoModelForSequenceClassification.from_pretrained(path)
        self.model_.to(self.device).eval()
        id2label = {int(k): str(v) for k, v in self.model_.config.id2label.items()}
        mapping = {}
        for idx, label in id2label.items():
            given = None
            if self.label_map:
                given = self.label_map.get(label, self.label_map.get(str(idx)))
            polarity = given or polarity_of_label(label)
            if polarity not in POLARITIES:
                raise ConfigError(
                    f"{path}: cannot tell the polarity of label {idx}={label!r} (labels: {id2label}). "
                    "Pass options.label_map, e.g. {'LABEL_0': 'negative', 'LABEL_1': 'positive'}."
                )
            mapping[idx] = polarity
        if not {"negative", "positive"} <= set(mapping.values()):
            raise ConfigError(
                f"{path}: labels {id2label} map to {mapping}; need a negative and a positive one."
            )
        self.mapping_ = mapping
        self.classes_ = [p for p in POLARITIES if p in mapping.values()]
        self.version_ = version_id(
            "sentiment", "pretrained", {"model": path, "transformers": transformers.__version__}
        )
        return self

    @property
    def version(self) -> str:
        """Version string recorded on every row."""
        self._check()
        return self.version_

    @property
    def source(self) -> str:
        """Supervision source: a pretrained classifier."""
        return "pretrained"

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("TransformersSentiment is not loaded: call fit() first.")

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities over ``classes_`` (model classes summed per polarity)."""
        self._check()
        torch, _ = _torch()
        out = np.zeros((len(texts), len(self.classes_)))
        col = {c: j for j, c in enumerate(self.classes_)}
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                chunk = [str(t) for t in texts[start : start + self.batch_size]]
                enc = self.tokenizer_(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                ).to(self.device)
                p = torch.softmax(self.model_(**enc).logits.float(), dim=-1).cpu().numpy()
                for idx, polarity in self.mapping_.items():
                    out[start : start + len(chunk), col[polarity]] += p[:, idx]
        return out

    def score(self, embeddings: np.ndarray | None = None, texts: Sequence[str] | None = None) -> np.ndarray:
        """Scores in -1..1 from the texts (``embeddings`` are ignored)."""
        if texts is None:
            raise SchemaError("sentiment.transformers.v1 reads texts: pass texts=[...].")
        if isinstance(texts, str):
            raise SchemaError("texts must be a list of strings, not a single string: wrap it as [text].")
        texts = ["" if t is None else str(t) for t in texts]
        return proba_to_scores(self.proba(texts), self.classes_, None, self.neutral_band)

    def predict(
        self, embeddings: np.ndarray | None = None, texts: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (negative/neutral/positive) and scores."""
        scores = self.score(embeddings, texts)
        return label_from_score(scores, self.neutral_band), scores

    def save(self, path: str | Path) -> Path:
        """Copy the model into ``path/hf`` (self-contained) and write the manifest."""
        self._check()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(out / "hf")
        self.tokenizer_.save_pretrained(out / "hf")
        manifest = new_manifest(
            "sentiment",
            self.name,
            self.version,
            self.source,
            model=str(self.model),
            label_mapping={str(k): v for k, v in self.mapping_.items()},
            params={
                "label_map": self.label_map,
                "batch_size": self.batch_size,
                "max_length": self.max_length,
                "neutral_band": self.neutral_band,
                "mixed_band": self.mixed_band,
            },
        )
        write_manifest(out, manifest)
        return out

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TransformersSentiment:
        """Read a folder written by :meth:`save`."""
        folder = Path(path)
        manifest = read_manifest(folder, "sentiment")
        model = cls(str(folder / "hf"), device=device, **manifest["params"]).fit()
        model.version_ = manifest["version"]
        return model
