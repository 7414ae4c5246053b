"""The plain topic models: the switched-off stage and BERTopic's own UMAP + HDBSCAN.

* :class:`NoTopics`: every text is an outlier (``topics.none.v1``).
* :class:`BERTopicModel` (``topics.bertopic.v1``): BERTopic's UMAP + HDBSCAN, kept as centroids for
  assignment; kept for comparison and for models stored by earlier versions.

The default ``topics.stable.v1`` is :class:`pipeline.topics.stable.StableTopicModel`, a ``BERTopic``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import clock
from pipeline.config import DEFAULT_LANGUAGES
from pipeline.embed import l2_normalise
from pipeline.errors import (
    InsufficientDataError,
    MissingDependencyError,
    NotFittedError,
)
from pipeline.model_store import new_manifest, version_id, write_manifest

log = logging.getLogger(__name__)


def stop_words(languages: list[str]) -> list[str]:
    """spaCy's stop-word lists for the given languages, merged and lower-cased."""
    words: set[str] = set()
    for lang in languages:
        try:
            module = importlib.import_module(f"spacy.lang.{lang}.stop_words")
        except ImportError:
            log.warning("no spaCy stop words for language %r", lang)
            continue
        words |= {w.lower() for w in module.STOP_WORDS}
    # Placeholders written by PII redaction and survey filler carry no theme.
    words |= {"email", "url", "phone", "card", "handle", "iban", "tax_id"}
    return sorted(words)


class NoTopics:
    """The switched-off topic stage: every text is an outlier (-1)."""

    version = "none"

    def fit(self, texts: list[str], embeddings: np.ndarray) -> NoTopics:
        """Nothing to learn."""
        return self

    def transform(self, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
        """All -1."""
        return np.full(len(embeddings), -1, dtype=int)

    def topic_table(self) -> pd.DataFrame:
        """An empty topic table."""
        return pd.DataFrame(columns=["topic_id", "label", "keywords", "size"])

    def labels(self, ids: np.ndarray) -> list[str | None]:
        """No labels."""
        return [None] * len(ids)


class BERTopicModel:
    """BERTopic on precomputed embeddings, kept as centroids for assignment.

    Args:
        languages: Languages whose stop words are removed from keywords.
        min_topic_size: HDBSCAN's min_cluster_size (scaled down for small windows).
        n_neighbors: UMAP neighbours.
        n_components: UMAP output dimensions.
        assign_threshold: Minimum cosine similarity to a centroid; below it a text is an outlier.
        n_keywords: Keywords kept per topic (the label uses the first three).
        seed: Random seed of UMAP.
    """

    name = "topics.bertopic.v1"

    def __init__(
        self,
        languages: list[str] | None = None,
        min_topic_size: int = 15,
        n_neighbors: int = 15,
        n_components: int = 5,
        assign_threshold: float = 0.35,
        n_keywords: int = 8,
        seed: int = 42,
    ) -> None:
        self.languages = languages or list(DEFAULT_LANGUAGES)
        self.min_topic_size = min_topic_size
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.assign_threshold = assign_threshold
        self.n_keywords = n_keywords
        self.seed = seed

    def fit(self, texts: list[str], embeddings: np.ndarray) -> BERTopicModel:
        """Fit BERTopic on the texts and their embeddings; keep centroids and keywords."""
        if len(texts) != len(embeddings):
            raise ValueError(f"texts ({len(texts)}) and embeddings ({len(embeddings)}) differ in length")
        try:
            from bertopic import BERTopic
            from hdbscan import HDBSCAN
            from sklearn.feature_extraction.text import CountVectorizer
            from umap import UMAP
        except ImportError as exc:
            raise MissingDependencyError("Topic modelling needs bertopic: pip install bertopic") from exc
        n = len(texts)
        if n < 10:
            raise InsufficientDataError(
                f"Topic fitting needs at least 10 texts, got {n}: pass more answers (or a saved model)."
            )
        min_size = int(max(5, min(self.min_topic_size, n // 20)))
        model = BERTopic(
            embedding_model=None,
            umap_model=UMAP(
                n_neighbors=min(self.n_neighbors, n - 1),
                n_components=self.n_components,
                min_dist=0.0,
                metric="cosine",
                random_state=self.seed,
            ),
            hdbscan_model=HDBSCAN(min_cluster_size=min_size, metric="euclidean", prediction_data=False),
            vectorizer_model=CountVectorizer(
                stop_words=stop_words(self.languages),
                token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
                min_df=1,
                max_features=50_000,
            ),
            calculate_probabilities=False,
            verbose=False,
        )
        topics = np.asarray(model.fit_transform(texts, embeddings)[0])
        emb = l2_normalise(embeddings)
        ids = sorted(t for t in set(topics.tolist()) if t != -1)
        self.topic_ids_ = np.asarray(ids, dtype=int)
        self.centroids_ = (
            l2_normalise(np.stack([emb[topics == t].mean(0) for t in ids]))
            if ids
            else np.zeros((0, emb.shape[1]), dtype=np.float32)
        )
        keywords = {t: [w for w, _ in (model.get_topic(t) or [])][: self.n_keywords] for t in ids}
        self.keywords_ = keywords
        self.fitted_at_ = clock.utcnow().replace(microsecond=0)
        self.version_ = _fitted_version("bertopic", self.fitted_at_, self.centroids_)
        assigned = self.transform(emb)
        self.sizes_ = {t: int((assigned == t).sum()) for t in ids}
        self.fit_outlier_share_ = float((assigned == -1).mean())
        log.info("topics: %d topics on %d texts, %.1f%% outliers", len(ids), n, 100 * self.fit_outlier_share_)
        return self

    def _check(self) -> None:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("BERTopicModel is not fitted: call fit(texts, embeddings) or load(path).")

    @property
    def version(self) -> str:
        """Version string recorded on every row."""
        self._check()
        return self.version_

    def transform(self, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
        """Topic id of each embedding row (-1 when no centroid is similar enough).

        Args:
            embeddings: One row per text.
            languages: Accepted for interface compatibility with :class:`StableTopicModel`; unused.
        """
        self._check()
        if len(embeddings) == 0 or len(self.topic_ids_) == 0:
            return np.full(len(embeddings), -1, dtype=int)
        sims = l2_normalise(embeddings) @ self.centroids_.T
        best = sims.argmax(axis=1)
        out = self.topic_ids_[best]
        out[sims[np.arange(len(sims)), best] < self.assign_threshold] = -1
        return out.astype(int)

    def label(self, topic_id: int) -> str | None:
        """A readable label from the topic's first keywords."""
        words = self.keywords_.get(int(topic_id), [])
        return " / ".join(words[:3]) if words else None

    def labels(self, ids: np.ndarray) -> list[str | None]:
        """Labels for an array of topic ids (None for outliers)."""
        return [self.label(int(t)) if t != -1 else None for t in ids]

    def topic_table(self) -> pd.DataFrame:
        """One row per topic: topic_id, label, keywords, size."""
        self._check()
        return pd.DataFrame(
            {
                "topic_id": [int(t) for t in self.topic_ids_],
                "label": [self.label(int(t)) for t in self.topic_ids_],
                "keywords": [self.keywords_[int(t)] for t in self.topic_ids_],
                "size": [self.sizes_.get(int(t), 0) for t in self.topic_ids_],
            }
        )

    def _meta(self) -> dict:
        return {
            "version": self.version_,
            "fitted_at": self.fitted_at_.isoformat(),
            "topic_ids": [int(t) for t in self.topic_ids_],
            "keywords": {str(k): v for k, v in self.keywords_.items()},
            "sizes": {str(k): v for k, v in self.sizes_.items()},
            "fit_outlier_share": self.fit_outlier_share_,
            "params": {
                "assign_threshold": self.assign_threshold,
                "languages": self.languages,
                "min_topic_size": self.min_topic_size,
            },
        }

    @classmethod
    def _from_meta(cls, meta: dict, centroids: np.ndarray) -> BERTopicModel:
        model = cls(
            languages=meta["params"]["languages"],
            min_topic_size=meta["params"]["min_topic_size"],
            assign_threshold=meta["params"]["assign_threshold"],
        )
        model.centroids_ = np.asarray(centroids, dtype=np.float32).reshape(len(meta["topic_ids"]), -1)
        model.topic_ids_ = np.asarray(meta["topic_ids"], dtype=int)
        model.keywords_ = {int(k): v for k, v in meta["keywords"].items()}
        model.sizes_ = {int(k): v for k, v in meta["sizes"].items()}
        model.fitted_at_ = datetime.fromisoformat(meta["fitted_at"])
        model.version_ = meta["version"]
        model.fit_outlier_share_ = meta["fit_outlier_share"]
        return model

    @classmethod
    def from_record(cls, record: dict) -> BERTopicModel:
        """Rebuild a model from a row of the ``topic_models`` table of schema versions 1-2 (the upgrade to
        version 3 moves them into the model store)."""
        meta = json.loads(record["meta"])
        flat = np.frombuffer(bytes(record["centroids"]), dtype=np.float32)
        centroids = flat.reshape(-1, int(record["dim"])) if flat.size else flat.reshape(0, 1)
        if meta.get("name") == "topics.stable.v1":
            from pipeline.topics.stable_store import from_legacy_meta

            return from_legacy_meta(meta, centroids)  # type: ignore[return-value]
        return cls._from_meta(meta, centroids)

    def save(self, path: str | Path) -> Path:
        """Write the fitted state (centroids.npy + topics.json) to a folder."""
        self._check()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "centroids.npy", self.centroids_)
        (folder / "topics.json").write_text(json.dumps(self._meta(), indent=2), encoding="utf-8")
        return folder

    def save_version(
        self, path: str | Path, encoder: dict, metrics: dict, training_data: dict | None = None
    ) -> Path:
        """Write the model as a model-store version: :meth:`save`'s files plus ``manifest.json``."""
        return save_version(self, path, encoder, metrics, training_data)

    @classmethod
    def load(cls, path: str | Path) -> BERTopicModel:
        """Read a folder written by :meth:`save`, or by ``topics.stable.v1`` (then a
        :class:`~pipeline.topics.stable.StableTopicModel`, also from the files of earlier versions)."""
        folder = Path(path)
        from pipeline.topics.stable_store import is_stable_folder, load_stable

        if is_stable_folder(folder):
            return load_stable(folder)  # type: ignore[return-value]
        meta = json.loads((folder / "topics.json").read_text(encoding="utf-8"))
        return cls._from_meta(meta, np.load(folder / "centroids.npy"))


def _fitted_version(kind: str, fitted_at: datetime, centroids: np.ndarray, n: int = 0) -> str:
    """The model store's version id of a fit: what was fitted (its centroids), on how many texts, when."""
    digest = hashlib.sha256(np.ascontiguousarray(centroids, dtype="<f4").tobytes()).hexdigest()
    return version_id("topics", kind, {"fitted_at": fitted_at.isoformat(), "n": n, "centroids": digest})


def save_version(
    model: Any, path: str | Path, encoder: dict, metrics: dict, training_data: dict | None = None
) -> Path:
    """Write a fitted topic model (any with ``save``, ``name``, ``version_``, ``fitted_at_`` and
    ``topic_ids_``) as a model-store version: its own files plus the store's ``manifest.json``."""
    folder = model.save(path)
    manifest = new_manifest(
        "topics",
        model.name,
        model.version_,
        "fitted",
        created_at=model.fitted_at_.isoformat(),
        encoder=encoder,
        training_data=training_data or {},
        metrics=metrics,
        n_topics=int(len(model.topic_ids_)),
    )
    write_manifest(folder, manifest)
    return folder
