"""Topic discovery over the shared embeddings (no topic model ever embeds anything itself).

Two registered models, both kept as centroids so that assignment is a nearest-centroid lookup that gives
the same answer for a text at fit time and later (``transform`` never disagrees with ``fit``):

* ``topics.stable.v1`` (:class:`StableTopicModel`, the default): themes that stay put. Language
  centering (the per-language mean embedding of the fit window is subtracted, so the same complaint in
  Portuguese and in Dutch lands in one topic), a deterministic PCA, and spherical k-means started from a
  deterministic principal-direction split of the data (no random seed, no dependence on input order),
  near-duplicate topics merged, too-small topics dissolved, and every text within a similarity floor of a
  centroid assigned (few outliers, no junk topics). Large windows are fitted on a content-hash sample and
  the rest assigned. BERTopic supplies the c-TF-IDF keywords, over the clusters found here.
* ``topics.bertopic.v1`` (:class:`BERTopicModel`): BERTopic's own UMAP + HDBSCAN, kept for comparison
  and for models stored by earlier versions.

Topic ids of a fitted model can be renamed (:meth:`StableTopicModel.relabel`) to the stable ids of the
``topics`` registry; see :mod:`pipeline.topic_registry`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import clock
from pipeline.embed import l2_normalise
from pipeline.errors import (
    InsufficientDataError,
    MissingDependencyError,
    NotFittedError,
    UnknownComponentError,
)
from pipeline.model_store import new_manifest, version_id, write_manifest
from pipeline.schema import TOPIC_INFO_COLUMNS

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
        self.languages = languages or ["en", "pt", "es", "fr", "nl"]
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
        target = TOPIC_MODELS.get(meta.get("name", "topics.bertopic.v1"), cls)
        if not (isinstance(target, type) and issubclass(target, BERTopicModel)):
            target = cls
        flat = np.frombuffer(bytes(record["centroids"]), dtype=np.float32)
        return target._from_meta(
            meta, flat.reshape(-1, int(record["dim"])) if flat.size else flat.reshape(0, 1)
        )

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
        folder = self.save(path)
        manifest = new_manifest(
            "topics",
            self.name,
            self.version_,
            "fitted",
            created_at=self.fitted_at_.isoformat(),
            encoder=encoder,
            training_data=training_data or {},
            metrics=metrics,
            n_topics=int(len(self.topic_ids_)),
        )
        write_manifest(folder, manifest)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BERTopicModel:
        """Read a folder written by :meth:`save` (of whichever registered model wrote it)."""
        folder = Path(path)
        meta = json.loads((folder / "topics.json").read_text(encoding="utf-8"))
        target = TOPIC_MODELS.get(meta.get("name", "topics.bertopic.v1"), cls)
        if not (isinstance(target, type) and issubclass(target, BERTopicModel)):
            target = cls
        return target._from_meta(meta, np.load(folder / "centroids.npy"))


def _fitted_version(kind: str, fitted_at: datetime, centroids: np.ndarray, n: int = 0) -> str:
    """The model store's version id of a fit: what was fitted (its centroids), on how many texts, when."""
    digest = hashlib.sha256(np.ascontiguousarray(centroids, dtype="<f4").tobytes()).hexdigest()
    return version_id("topics", kind, {"fitted_at": fitted_at.isoformat(), "n": n, "centroids": digest})


# ---------------------------------------------------------------------------------------------------
# topics.stable.v1


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _unb64(text: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(-1, dim).astype(np.float32)


def content_sample(texts: list[str], k: int) -> np.ndarray:
    """Indices of ``k`` texts chosen by a hash of their content, in ascending index order.

    The same texts give the same sample whatever their order and whatever the seed, so that a fit on a
    sample is as reproducible as a fit on everything.

    Args:
        texts: The texts.
        k: How many to keep (all when ``k >= len(texts)``).
    """
    n = len(texts)
    if k >= n:
        return np.arange(n)
    keys = [hashlib.blake2b(t.encode("utf-8", errors="replace"), digest_size=8).hexdigest() for t in texts]
    # Ties (repeated texts) are broken by the text itself, then by position: still order-free for the set.
    order = sorted(range(n), key=lambda i: (keys[i], texts[i]))
    return np.sort(np.asarray(order[:k], dtype=int))


def language_means(
    x: np.ndarray, languages: list[str] | np.ndarray, min_docs: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The mean embedding of each language with at least ``min_docs`` rows, and the overall mean.

    Args:
        x: L2-normalised embeddings.
        languages: The language of each row.
        min_docs: Languages with fewer rows get no mean of their own (the overall mean is used).

    Returns:
        ``({language: mean}, overall_mean)``.
    """
    langs = np.asarray([str(v) for v in languages])
    overall = x.mean(axis=0).astype(np.float32)
    means: dict[str, np.ndarray] = {}
    for lang in sorted(set(langs.tolist())):
        rows = langs == lang
        if rows.sum() >= min_docs:
            means[lang] = x[rows].mean(axis=0).astype(np.float32)
    return means, overall


def infer_languages(x: np.ndarray, means: dict[str, np.ndarray]) -> list[str]:
    """The language whose mean embedding is nearest (Euclidean) to each row.

    Used only when a caller cannot pass the rows' languages: multilingual encoders keep a language
    direction, so the nearest language mean is usually the right language.
    """
    if not means:
        return [""] * len(x)
    names = sorted(means)
    m = np.stack([means[k] for k in names])
    score = x @ m.T - 0.5 * (m * m).sum(axis=1)[None, :]
    return [names[j] for j in score.argmax(axis=1)]


def center_languages(
    x: np.ndarray,
    languages: list[str] | np.ndarray | None,
    means: dict[str, np.ndarray],
    overall: np.ndarray | None,
) -> np.ndarray:
    """Subtract each row's language mean (the overall mean for other languages) and re-normalise."""
    x = l2_normalise(x)
    if overall is None:
        return x
    if languages is None:
        languages = infer_languages(x, means)
    langs = np.asarray([str(v) for v in languages])
    if len(langs) != len(x):
        raise ValueError(f"languages ({len(langs)}) and embeddings ({len(x)}) differ in length")
    out = x - overall[None, :]
    for lang, mean in means.items():
        rows = langs == lang
        if rows.any():
            out[rows] = x[rows] - mean[None, :]
    return l2_normalise(out)


def pca_basis(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic PCA: the mean and the top principal axes (columns), signs fixed.

    Eigen-decomposition of the covariance (no randomised solver), so the same data gives the same axes
    whatever the order of its rows.
    """
    mean = x.mean(axis=0)
    centred = (x - mean).astype(np.float64)
    cov = centred.T @ centred / max(len(x) - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    keep = np.argsort(values)[::-1][: min(n_components, x.shape[1])]
    axes = vectors[:, keep]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    signs[signs == 0] = 1.0
    return mean.astype(np.float32), (axes * signs).astype(np.float32)


def principal_split_init(x: np.ndarray, k: int, min_size: int) -> np.ndarray:
    """Deterministic k-means starting centroids by principal-direction divisive partitioning.

    The group with the largest within-group sum of squares is split at its mean along its first
    principal axis until there are ``k`` groups (groups smaller than ``2 * min_size`` are not split).
    No random numbers: the start, and so the k-means result, does not depend on a seed or on row order.
    """
    groups = [np.arange(len(x))]
    sse = [float(((x - x.mean(axis=0)) ** 2).sum())]
    while len(groups) < k:
        order = np.argsort(sse)[::-1]
        target = next((int(i) for i in order if len(groups[i]) >= 2 * min_size and sse[i] > 0), None)
        if target is None:
            break
        rows = groups.pop(target)
        sse.pop(target)
        part = x[rows] - x[rows].mean(axis=0)
        _, vectors = np.linalg.eigh(part.T.astype(np.float64) @ part)
        side = part @ vectors[:, -1] > 0
        for half in (rows[~side], rows[side]):
            groups.append(half)
            sse.append(float(((x[half] - x[half].mean(axis=0)) ** 2).sum()) if len(half) else 0.0)
    return np.stack([x[g].mean(axis=0) for g in groups if len(g)])


def spherical_kmeans(x: np.ndarray, init: np.ndarray, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations on the unit sphere (cosine k-means) from given centroids.

    Returns:
        ``(labels, centroids)``; empty clusters are dropped and labels renumbered 0..k-1.
    """
    centroids = l2_normalise(init)
    labels = np.full(len(x), -1)
    for _ in range(max_iter):
        new = (x @ centroids.T).argmax(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        used = np.unique(labels)
        centroids = l2_normalise(np.stack([x[labels == j].mean(axis=0) for j in used]))
        labels = np.searchsorted(used, labels)
    return labels, centroids


def _merge_close(x: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Merge clusters whose centroids have cosine similarity >= threshold (closest pair first)."""
    labels = labels.copy()
    while True:
        used = np.unique(labels)
        if len(used) < 2:
            return np.searchsorted(used, labels)
        cents = l2_normalise(np.stack([x[labels == j].mean(axis=0) for j in used]))
        sims = cents @ cents.T
        np.fill_diagonal(sims, -np.inf)
        i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        if sims[i, j] < threshold:
            return np.searchsorted(used, labels)
        labels[labels == used[max(i, j)]] = used[min(i, j)]


def ctfidf_keywords(
    texts: list[str], labels: np.ndarray, languages: list[str], n_keywords: int
) -> dict[int, list[str]]:
    """c-TF-IDF keywords of each cluster, computed by BERTopic over the given cluster labels.

    BERTopic runs with its no-op dimensionality reduction and clustering parts (``y`` supplies the
    clusters), so only its class-based TF-IDF and representation are used.
    """
    try:
        from bertopic import BERTopic
        from bertopic.cluster import BaseCluster
        from bertopic.dimensionality import BaseDimensionalityReduction
        from sklearn.feature_extraction.text import CountVectorizer
    except ImportError as exc:
        raise MissingDependencyError("Topic keywords need bertopic: pip install bertopic") from exc
    ids = sorted(set(labels.tolist()) - {-1})
    if not ids:
        return {}
    order = sorted(range(len(texts)), key=lambda i: texts[i])  # order-free input to the vectoriser
    docs = [texts[i] for i in order]
    y = np.asarray(labels)[order]
    model = BERTopic(
        embedding_model=None,
        umap_model=BaseDimensionalityReduction(),
        hdbscan_model=BaseCluster(),
        vectorizer_model=CountVectorizer(
            stop_words=stop_words(languages),
            token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
            min_df=1,
            max_features=50_000,
        ),
        calculate_probabilities=False,
        # "english" would strip every non-ASCII letter before counting words.
        language="multilingual",
        verbose=False,
    )
    try:
        model.fit(docs, embeddings=np.zeros((len(docs), 1), dtype=np.float32), y=y)
    except ValueError as exc:  # e.g. an empty vocabulary (texts of stop words only)
        log.warning("topics: no keywords (%s)", exc)
        return {t: [] for t in ids}
    found = np.asarray(model.topics_)
    out: dict[int, list[str]] = {}
    for t in ids:
        mine = found[y == t]
        theirs = int(pd.Series(mine).mode().iloc[0]) if len(mine) else -1
        words = model.get_topic(theirs) or []
        out[t] = [w for w, _ in words if w][:n_keywords]
    return out


class StableTopicModel(BERTopicModel):
    """Themes that stay put: language-centred, deterministic centroid topics with stable ids.

    Args:
        languages: Languages whose stop words are removed from keywords (the languages of the fit
            window are added).
        n_topics: Starting number of clusters; None picks ``sqrt(n / 20)`` within [8, max_topics].
        max_topics: Upper bound of the automatic number of clusters.
        min_topic_size: Topics smaller than this (or than ``min_topic_share`` of the fit window) are
            dissolved and their texts reassigned to the nearest remaining topic.
        min_topic_share: See ``min_topic_size``.
        merge_threshold: Topics whose centroids are at least this similar (cosine, centred space) are
            merged.
        n_components: PCA dimensions the clustering runs in.
        center_languages: Subtract the per-language mean embedding (stored with the model).
        min_language_docs: Languages with fewer texts in the fit window use the overall mean.
        assign_threshold: The similarity floor: a text whose best centroid similarity (centred space)
            is below it is an outlier (-1).
        max_fit_docs: Windows larger than this are fitted on a content-hash sample of this size; the
            rest is assigned.
        n_keywords: Keywords kept per topic (the label uses the first three).
        n_quotes: Representative quotes kept per topic (the texts nearest the centroid).
        novelty_jaccard: In a warm-started refit, a fresh cluster whose best overlap with the
            warm-started clusters is below this, and whose centroid is less similar than
            ``novelty_similarity`` to every warm-started centroid, seeds a new theme (or a split part).
        novelty_similarity: See ``novelty_jaccard``.
        keywords: Compute c-TF-IDF keywords with BERTopic; False switches that part off (the label
            then falls back to the topic's first representative quote).
        seed: Kept for the common interface and recorded; the fit does not depend on it (nor on the
            order of the input), by design.
    """

    name = "topics.stable.v1"

    def __init__(
        self,
        languages: list[str] | None = None,
        n_topics: int | None = None,
        max_topics: int = 40,
        min_topic_size: int = 15,
        min_topic_share: float = 0.005,
        merge_threshold: float = 0.8,
        n_components: int = 64,
        center_languages: bool = True,
        min_language_docs: int = 20,
        assign_threshold: float = 0.2,
        max_fit_docs: int = 20_000,
        n_keywords: int = 8,
        n_quotes: int = 3,
        keywords: bool = True,
        novelty_jaccard: float = 0.5,
        novelty_similarity: float = 0.8,
        seed: int = 42,
    ) -> None:
        self.novelty_jaccard = novelty_jaccard
        self.novelty_similarity = novelty_similarity
        self.languages = languages or ["en", "pt", "es", "fr", "nl"]
        self.keywords = keywords
        self.n_topics = n_topics
        self.max_topics = max_topics
        self.min_topic_size = min_topic_size
        self.min_topic_share = min_topic_share
        self.merge_threshold = merge_threshold
        self.n_components = n_components
        self.center_languages = center_languages
        self.min_language_docs = min_language_docs
        self.assign_threshold = assign_threshold
        self.max_fit_docs = max_fit_docs
        self.n_keywords = n_keywords
        self.n_quotes = n_quotes
        self.seed = seed

    # ---- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        texts: list[str],
        embeddings: np.ndarray,
        languages: list[str] | None = None,
        warm_start: StableTopicModel | None = None,
    ) -> StableTopicModel:
        """Fit topics on a window of texts and their embeddings.

        Args:
            texts: The (redacted) texts; used for keywords and representative quotes only.
            embeddings: One row per text, from the pipeline's embedder.
            languages: The language of each text (the prepared ``language`` column); None skips the
                per-language centering (the overall mean is still removed).
            warm_start: The previous model (a refit): its topics, as the window's texts fall into them,
                start the clustering, so themes that did not change come out the same; the
                deterministic principal splits still add starts for themes it does not cover.

        Returns:
            self, with ``labels_`` holding the topic of every input text (what :meth:`transform`
            returns for them).
        """
        if isinstance(texts, pd.DataFrame | pd.Series):
            raise TypeError(
                "fit() takes a list of strings, not a DataFrame/Series: pass df['text'].tolist()."
            )
        texts = ["" if t is None else str(t) for t in texts]
        n = len(texts)
        if n != len(embeddings):
            raise ValueError(f"texts ({n}) and embeddings ({len(embeddings)}) differ in length")
        if languages is not None and len(languages) != n:
            raise ValueError(f"languages ({len(languages)}) and texts ({n}) differ in length")
        if n < 10:
            raise InsufficientDataError(
                f"Topic fitting needs at least 10 texts, got {n}: pass more answers (or a saved model)."
            )
        x = l2_normalise(np.asarray(embeddings))
        langs = [str(v) for v in languages] if languages is not None else None
        if self.center_languages and langs is not None:
            self.language_means_, self.overall_mean_ = language_means(x, langs, self.min_language_docs)
        else:
            self.language_means_, self.overall_mean_ = {}, x.mean(axis=0).astype(np.float32)
        xc = center_languages(
            x, langs if langs is not None else [""] * n, self.language_means_, self.overall_mean_
        )

        sample = content_sample(texts, self.max_fit_docs)
        xs = xc[sample]
        mean, axes = pca_basis(xs, self.n_components)
        z = l2_normalise((xs - mean) @ axes)
        m = len(sample)
        min_size = int(max(3, min(max(self.min_topic_size, self.min_topic_share * m), m // 10)))
        k = self.n_topics or int(np.clip(round(np.sqrt(m / 20)), 8, self.max_topics))
        k = int(max(1, min(k, m // max(min_size, 1))))
        starts = principal_split_init(z, k, min_size)
        if warm_start is not None and len(warm_start.topic_ids_):
            starts = self._warm_starts(warm_start, embeddings, langs, sample, z, starts, min_size)
        labels, _ = spherical_kmeans(z, starts)
        labels = _merge_close(z, labels, self.merge_threshold)
        labels = self._dissolve_small(z, labels, min_size)
        # Centroids live in the full centred space, so assignment needs no PCA.
        ids = np.unique(labels)
        cents = l2_normalise(np.stack([xs[labels == j].mean(axis=0) for j in ids]))
        sizes = np.array([(labels == j).sum() for j in ids])
        # Topic ids by size, largest first (ties by centroid, so the order is data-determined).
        order = sorted(range(len(ids)), key=lambda j: (-sizes[j], tuple(np.round(cents[j, :4], 6))))
        self.centroids_ = cents[order].astype(np.float32)
        self.topic_ids_ = np.arange(len(order), dtype=int)
        self.labels_ = self._assign(xc)

        self.fitted_at_ = clock.utcnow().replace(microsecond=0)
        self.version_ = _fitted_version("stable", self.fitted_at_, self.centroids_, n)
        sample_labels = self.labels_[sample]
        stop_langs = sorted(set(self.languages) | set(langs or []))
        self.keywords_ = (
            ctfidf_keywords([texts[i] for i in sample], sample_labels, stop_langs, self.n_keywords)
            if self.keywords
            else {int(t): [] for t in self.topic_ids_}
        )
        self.quotes_ = self._quotes(texts, xc, self.labels_)
        self.sizes_ = {int(t): int((self.labels_ == t).sum()) for t in self.topic_ids_}
        self.fit_outlier_share_ = float((self.labels_ == -1).mean())
        self.suggested_tags_: dict[int, str | None] = {}
        self.tag_shares_: dict[int, float] = {}
        self.fit_languages_ = sorted(set(langs)) if langs else []
        log.info(
            "topics: %d topics on %d texts (fitted on %d), %.1f%% outliers",
            len(self.topic_ids_),
            n,
            m,
            100 * self.fit_outlier_share_,
        )
        return self

    def _warm_starts(
        self,
        previous: StableTopicModel,
        embeddings: np.ndarray,
        langs: list[str] | None,
        sample: np.ndarray,
        z: np.ndarray,
        fresh: np.ndarray,
        min_size: int,
    ) -> np.ndarray:
        """Starting centroids from the previous topics, plus the fresh clusters they do not cover.

        The previous topics, as the window's texts fall into them, give one start each. A fresh
        clustering (from the deterministic principal splits) runs too; each fresh cluster that is both
        poorly covered (best Jaccard overlap with a warm-started cluster below ``novelty_jaccard``) and
        distinct (centroid similarity to every warm start below ``novelty_similarity``) is a new theme
        or one part of a split, and adds its centroid as one more start. Re-partitions of the same
        themes are not distinct, so they do not churn the topics.
        """
        old = previous.transform(
            np.asarray(embeddings)[sample], languages=[langs[i] for i in sample] if langs else None
        )
        warm = [z[old == t].mean(axis=0) for t in previous.topic_ids_ if (old == t).sum() >= min_size]
        if not warm:
            return fresh
        warm_c = l2_normalise(np.stack(warm))
        warm_labels, _ = spherical_kmeans(z, warm_c)
        fresh_labels, fresh_c = spherical_kmeans(z, fresh)
        extra = []
        for f in range(len(fresh_c)):
            rows = fresh_labels == f
            if rows.sum() < min_size:
                continue
            inter = np.bincount(warm_labels[rows], minlength=warm_labels.max() + 1)
            union = rows.sum() + np.bincount(warm_labels, minlength=len(inter)) - inter
            overlap = float((inter / np.maximum(union, 1)).max())
            distinct = float((warm_c @ fresh_c[f]).max()) < self.novelty_similarity
            if overlap < self.novelty_jaccard and distinct:
                extra.append(fresh_c[f])
        return np.concatenate([warm_c, np.stack(extra)]) if extra else warm_c

    @staticmethod
    def _dissolve_small(z: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
        """Reassign texts of clusters smaller than min_size to the nearest remaining cluster."""
        while True:
            used, counts = np.unique(labels, return_counts=True)
            small = used[counts < min_size]
            if len(small) == 0 or len(small) == len(used):
                return np.searchsorted(np.unique(labels), labels)
            # Dissolve the smallest first, then re-check (a neighbour may grow past min_size).
            target = used[np.argmin(counts)]
            keep = [j for j in used if j != target]
            cents = l2_normalise(np.stack([z[labels == j].mean(axis=0) for j in keep]))
            rows = labels == target
            labels = labels.copy()
            labels[rows] = np.asarray(keep)[(z[rows] @ cents.T).argmax(axis=1)]

    def _assign(self, xc: np.ndarray) -> np.ndarray:
        if len(xc) == 0 or len(self.topic_ids_) == 0:
            return np.full(len(xc), -1, dtype=int)
        sims = xc @ self.centroids_.T
        best = sims.argmax(axis=1)
        out = self.topic_ids_[best].astype(int)
        out[sims[np.arange(len(sims)), best] < self.assign_threshold] = -1
        return out

    def _quotes(self, texts: list[str], xc: np.ndarray, labels: np.ndarray) -> dict[int, list[str]]:
        """The distinct texts nearest each centroid (texts are redacted upstream)."""
        out: dict[int, list[str]] = {}
        for j, t in enumerate(self.topic_ids_):
            rows = np.flatnonzero(labels == t)
            sims = xc[rows] @ self.centroids_[j]
            picked: list[str] = []
            for r in rows[np.argsort(-sims, kind="stable")]:
                text = " ".join(texts[r].split())
                if text and text not in picked:
                    picked.append(text[:300])
                if len(picked) >= self.n_quotes:
                    break
            out[int(t)] = picked
        return out

    # ---- using -----------------------------------------------------------------------------------

    def centred(self, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
        """Embeddings in the model's language-centred space (what centroids are compared with)."""
        self._check()
        return center_languages(np.asarray(embeddings), languages, self.language_means_, self.overall_mean_)

    def transform(self, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
        """Topic id of each embedding row (-1 when no centroid is within the similarity floor).

        Args:
            embeddings: One row per text.
            languages: The language of each row; None infers it from the nearest stored language mean
                (pass it when known: the prepared ``language`` column).
        """
        self._check()
        if len(embeddings) == 0:
            return np.full(0, -1, dtype=int)
        return self._assign(self.centred(embeddings, languages))

    def label(self, topic_id: int) -> str | None:
        """The first three keywords, else the start of the topic's most central quote."""
        words = self.keywords_.get(int(topic_id), [])
        if words:
            return " / ".join(words[:3])
        quotes = self.quotes_.get(int(topic_id), [])
        return quotes[0][:60] if quotes else None

    def relabel(self, mapping: dict[int, int]) -> StableTopicModel:
        """Rename topic ids (e.g. to the registry's stable ids); returns self."""
        self._check()
        missing = [int(t) for t in self.topic_ids_ if int(t) not in mapping]
        if missing:
            raise ValueError(f"relabel(): no new id for topic(s) {missing}")
        new = [int(mapping[int(t)]) for t in self.topic_ids_]
        if len(set(new)) != len(new):
            raise ValueError(f"relabel(): new ids must be distinct, got {new}")
        remap = dict(zip((int(t) for t in self.topic_ids_), new, strict=True))
        self.topic_ids_ = np.asarray(new, dtype=int)
        if hasattr(self, "labels_"):
            self.labels_ = np.asarray([remap.get(int(t), -1) for t in self.labels_], dtype=int)
        for attr in ("keywords_", "quotes_", "sizes_", "suggested_tags_", "tag_shares_"):
            old = getattr(self, attr, {})
            setattr(self, attr, {remap[int(k)]: v for k, v in old.items() if int(k) in remap})
        return self

    def suggest_tags(self, doc_tags: list[list[str]], min_share: float = 0.3) -> StableTopicModel:
        """Suggest a taxonomy tag for each topic from the tags of its fit texts.

        A topic's suggested tag is its most frequent tag when that tag is on at least ``min_share`` of
        the topic's texts; a topic that no tag covers gets None (a candidate new tag).

        Args:
            doc_tags: The tags of each fit text (same order as in :meth:`fit`).
            min_share: Share of the topic's texts the tag must cover.
        """
        self._check()
        if not hasattr(self, "labels_") or len(doc_tags) != len(self.labels_):
            raise ValueError("suggest_tags() needs one tag list per text given to fit().")
        for t in self.topic_ids_:
            rows = np.flatnonzero(self.labels_ == t)
            counts: dict[str, int] = {}
            for r in rows:
                for tag in set(doc_tags[r] or []):
                    counts[str(tag)] = counts.get(str(tag), 0) + 1
            best = min(counts.items(), key=lambda kv: (-kv[1], kv[0])) if counts else None
            share = best[1] / max(len(rows), 1) if best else 0.0
            self.tag_shares_[int(t)] = float(share)
            self.suggested_tags_[int(t)] = best[0] if best and share >= min_share else None
        return self

    def topic_table(self) -> pd.DataFrame:
        """One row per topic: id, label, keywords, quotes, suggested tag (or a proposed new one), size."""
        self._check()
        rows = []
        for t in (int(v) for v in self.topic_ids_):
            tag = self.suggested_tags_.get(t)
            kws = self.keywords_.get(t, [])
            rows.append(
                {
                    "topic_id": t,
                    "label": self.label(t),
                    "keywords": kws,
                    "representative_quotes": self.quotes_.get(t, []),
                    "suggested_tag": tag,
                    "tag_share": self.tag_shares_.get(t),
                    "candidate_new_tag": ("_".join(kws[:2]) or f"topic_{t}") if tag is None else None,
                    "size": self.sizes_.get(t, 0),
                }
            )
        return pd.DataFrame(rows, columns=TOPIC_INFO_COLUMNS)

    # ---- persistence -----------------------------------------------------------------------------

    def _meta(self) -> dict:
        dim = int(self.centroids_.shape[1])
        langs = sorted(self.language_means_)
        return {
            "name": self.name,
            "version": self.version_,
            "fitted_at": self.fitted_at_.isoformat(),
            "topic_ids": [int(t) for t in self.topic_ids_],
            "keywords": {str(k): v for k, v in self.keywords_.items()},
            "quotes": {str(k): v for k, v in self.quotes_.items()},
            "sizes": {str(k): v for k, v in self.sizes_.items()},
            "suggested_tags": {str(k): v for k, v in self.suggested_tags_.items()},
            "tag_shares": {str(k): v for k, v in self.tag_shares_.items()},
            "fit_outlier_share": self.fit_outlier_share_,
            "fit_languages": self.fit_languages_,
            "dim": dim,
            "language_order": langs,
            "language_means": _b64(np.stack([self.language_means_[k] for k in langs])) if langs else "",
            "overall_mean": _b64(self.overall_mean_[None, :]),
            "params": {
                "languages": self.languages,
                "n_topics": self.n_topics,
                "max_topics": self.max_topics,
                "min_topic_size": self.min_topic_size,
                "min_topic_share": self.min_topic_share,
                "merge_threshold": self.merge_threshold,
                "n_components": self.n_components,
                "center_languages": self.center_languages,
                "min_language_docs": self.min_language_docs,
                "assign_threshold": self.assign_threshold,
                "max_fit_docs": self.max_fit_docs,
                "n_keywords": self.n_keywords,
                "n_quotes": self.n_quotes,
                "keywords": self.keywords,
                "novelty_jaccard": self.novelty_jaccard,
                "novelty_similarity": self.novelty_similarity,
                "seed": self.seed,
            },
        }

    @classmethod
    def _from_meta(cls, meta: dict, centroids: np.ndarray) -> StableTopicModel:
        model = cls(**meta["params"])
        dim = int(meta["dim"])
        model.centroids_ = np.asarray(centroids, dtype=np.float32).reshape(len(meta["topic_ids"]), dim)
        model.topic_ids_ = np.asarray(meta["topic_ids"], dtype=int)
        model.keywords_ = {int(k): v for k, v in meta["keywords"].items()}
        model.quotes_ = {int(k): v for k, v in meta.get("quotes", {}).items()}
        model.sizes_ = {int(k): v for k, v in meta["sizes"].items()}
        model.suggested_tags_ = {int(k): v for k, v in meta.get("suggested_tags", {}).items()}
        model.tag_shares_ = {int(k): v for k, v in meta.get("tag_shares", {}).items()}
        model.fitted_at_ = datetime.fromisoformat(meta["fitted_at"])
        model.version_ = meta["version"]
        model.fit_outlier_share_ = meta["fit_outlier_share"]
        model.fit_languages_ = meta.get("fit_languages", [])
        langs = meta.get("language_order", [])
        means = _unb64(meta["language_means"], dim) if langs else np.zeros((0, dim), np.float32)
        model.language_means_ = {k: means[i] for i, k in enumerate(langs)}
        model.overall_mean_ = _unb64(meta["overall_mean"], dim)[0]
        return model


TOPIC_MODELS = {
    "topics.stable.v1": StableTopicModel,
    "topics.bertopic.v1": BERTopicModel,
    "topics.none.v1": NoTopics,
}


def build_topics(name: str, **options: object) -> BERTopicModel | NoTopics:
    """Create a topic model from its registered name."""
    if name not in TOPIC_MODELS:
        raise UnknownComponentError(f"Unknown topic model {name!r}. Valid names: {sorted(TOPIC_MODELS)}")
    return TOPIC_MODELS[name](**options)  # type: ignore[arg-type]


def fit_topics(
    model: BERTopicModel | NoTopics,
    texts: list[str],
    embeddings: np.ndarray,
    languages: list[str] | None = None,
    previous: BERTopicModel | NoTopics | None = None,
) -> BERTopicModel | NoTopics:
    """Fit any registered topic model, passing languages (and a previous model) to those that use them.

    Args:
        model: An unfitted model from :func:`build_topics`.
        texts: The texts.
        embeddings: Their embeddings.
        languages: Their languages (used by ``topics.stable.v1``).
        previous: The previous fit; a ``topics.stable.v1`` refit starts from its topics.
    """
    if isinstance(model, StableTopicModel):
        warm = previous if isinstance(previous, StableTopicModel) else None
        return model.fit(texts, embeddings, languages=languages, warm_start=warm)
    return model.fit(texts, embeddings)
