"""The parts of ``topics.stable.v1`` that go into BERTopic's slots, and their numerical helpers.

* :class:`LanguageCentredPCA` (the ``umap_model`` slot, ``fit``/``transform``): subtracts each language's
  mean embedding (so the same complaint in Portuguese and in Dutch lands in one topic) and rotates the
  result onto its principal axes, computed deterministically (``eigh`` of the covariance, signs fixed).
* :class:`StableClusters` (the ``hdbscan_model`` slot, ``fit``/``predict``/``labels_``): spherical
  k-means on the leading ``n_components`` principal axes, started from a deterministic
  principal-direction split (no seed, no dependence on row order) or, in a refit, from the previous
  model's topics (BERTopic's ``y``); near-duplicate topics merged, too-small ones dissolved, and a
  similarity floor below which a text is an outlier (-1).

Why the reducer keeps every axis (a full rotation) instead of dropping to ``n_components``: the
clustering runs on the leading axes, but assignment compares a text with the centroids over all of them,
i.e. in the full language-centred space. A rotation preserves those cosine similarities exactly, so the
figures of bench/results/topics.json and models stored by earlier versions (centroids in the centred
space, no PCA stored) assign exactly as before: their rotation is the identity.

Why hand-written (DESIGN.md asks for the bench that shows it): BERTopic's defaults (UMAP + HDBSCAN) give
49% outliers, stability ARI 0.58 and topics split by language on the bench's data (bench/README.md,
"Topics"); these parts give 4%, 1.00 and NMI with language 0.02. scikit-learn's KMeans has no cosine
metric and a seeded start, PCA's default solver is randomised, and neither can warm-start from the
previous model's topics. No part imports BERTopic: they only follow its slot interfaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from pipeline.embed import l2_normalise
from pipeline.errors import NotFittedError


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


def pca_rotation(x: np.ndarray) -> np.ndarray:
    """Every principal axis of ``x`` (columns, largest variance first, signs fixed): a rotation.

    The first ``k`` columns are :func:`pca_basis`'s axes for ``n_components=k``.
    """
    return pca_basis(x, x.shape[1])[1]


class LanguageCentredPCA:
    """BERTopic's ``umap_model`` slot: language centring, then a deterministic PCA rotation.

    BERTopic calls ``fit(X, y)`` / ``fit_transform(X, y)``; the languages of the rows reach the fit through
    :meth:`bind_languages` (or the ``languages`` argument). ``transform`` without languages takes each
    row's nearest stored language mean.

    Args:
        center_languages: Subtract the per-language mean embedding (else only the overall mean).
        min_language_docs: Languages with fewer fit rows use the overall mean.
        rotate: Rotate onto the principal axes (False keeps the centred space as it is).
    """

    def __init__(
        self, center_languages: bool = True, min_language_docs: int = 20, rotate: bool = True
    ) -> None:
        self.center_languages = center_languages
        self.min_language_docs = min_language_docs
        self.rotate = rotate
        self._bound: list[str] | None = None

    @contextmanager
    def bind_languages(self, languages: Sequence[str] | None) -> Iterator[LanguageCentredPCA]:
        """Within the block, ``fit``/``fit_transform`` without ``languages`` use these (BERTopic passes
        only ``X`` and ``y``)."""
        self._bound = None if languages is None else [str(v) for v in languages]
        try:
            yield self
        finally:
            self._bound = None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, languages: Sequence[str] | None = None):
        """Learn the language means and the principal axes of the centred rows; returns self."""
        self.fit_transform(X, y, languages)
        return self

    def fit_transform(
        self, X: np.ndarray, y: np.ndarray | None = None, languages: Sequence[str] | None = None
    ) -> np.ndarray:
        """:meth:`fit`, returning the fit rows in the learned space."""
        x = l2_normalise(np.asarray(X))
        langs = [str(v) for v in languages] if languages is not None else self._bound
        if langs is not None and len(langs) != len(x):
            raise ValueError(f"languages ({len(langs)}) and embeddings ({len(x)}) differ in length")
        if self.center_languages and langs is not None:
            self.language_means_, self.overall_mean_ = language_means(x, langs, self.min_language_docs)
        else:
            self.language_means_, self.overall_mean_ = {}, x.mean(axis=0).astype(np.float32)
        xc = center_languages(
            x, langs if langs is not None else [""] * len(x), self.language_means_, self.overall_mean_
        )
        self.rotation_ = pca_rotation(xc) if self.rotate else None
        # The fit rows go through transform, so that they get exactly what a later transform gives them.
        return self.transform(X, langs if langs is not None else [""] * len(x))

    def centred(self, X: np.ndarray, languages: Sequence[str] | None = None) -> np.ndarray:
        """Rows language-centred and re-normalised (before the rotation)."""
        if not hasattr(self, "overall_mean_"):
            raise NotFittedError("LanguageCentredPCA is not fitted: call fit(X, languages=...) first.")
        return center_languages(np.asarray(X), languages, self.language_means_, self.overall_mean_)

    def transform(self, X: np.ndarray, languages: Sequence[str] | None = None) -> np.ndarray:
        """Rows in the learned space (unit length); ``languages`` None infers them from the stored means."""
        xc = self.centred(X, languages)
        return xc if self.rotation_ is None else xc @ self.rotation_


class StableClusters:
    """BERTopic's ``hdbscan_model`` slot: deterministic spherical k-means topics with an outlier floor.

    ``fit(X, y)`` clusters the rows of :class:`LanguageCentredPCA`'s space on their leading
    ``n_components`` axes; ``y`` (BERTopic's semi-supervised labels) is the warm start: the previous
    model's topic of each row (-1 for none), whose topics start the clustering so that themes that did
    not change come out the same. ``labels_`` and ``predict`` compare rows with the centroids over every
    axis and give -1 below ``assign_threshold``.

    Args:
        n_topics: Starting number of clusters; None picks ``sqrt(n / 20)`` within [8, max_topics].
        max_topics: Upper bound of the automatic number of clusters.
        min_topic_size: Topics smaller than this (or than ``min_topic_share`` of the rows) are dissolved.
        min_topic_share: See ``min_topic_size``.
        merge_threshold: Clusters whose centroids are at least this similar (cosine) are merged.
        n_components: Leading axes the k-means runs on.
        assign_threshold: The similarity floor for outliers.
        novelty_jaccard: In a warm-started fit, a fresh cluster whose best overlap with the warm-started
            clusters is below this, and whose centroid is less similar than ``novelty_similarity`` to
            every warm start, seeds a new topic (a new theme or one part of a split).
        novelty_similarity: See ``novelty_jaccard``.
    """

    def __init__(
        self,
        n_topics: int | None = None,
        max_topics: int = 40,
        min_topic_size: int = 15,
        min_topic_share: float = 0.005,
        merge_threshold: float = 0.8,
        n_components: int = 64,
        assign_threshold: float = 0.2,
        novelty_jaccard: float = 0.5,
        novelty_similarity: float = 0.8,
    ) -> None:
        self.n_topics = n_topics
        self.max_topics = max_topics
        self.min_topic_size = min_topic_size
        self.min_topic_share = min_topic_share
        self.merge_threshold = merge_threshold
        self.n_components = n_components
        self.assign_threshold = assign_threshold
        self.novelty_jaccard = novelty_jaccard
        self.novelty_similarity = novelty_similarity

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> StableClusters:
        """Cluster the rows (``y``: warm-start topics, -1 for none); returns self."""
        X = np.asarray(X, dtype=np.float32)
        m = len(X)
        if m == 0:
            raise ValueError("StableClusters.fit() got no rows.")
        z = l2_normalise(X[:, : self.n_components] - X[:, : self.n_components].mean(axis=0))
        min_size = int(max(3, min(max(self.min_topic_size, self.min_topic_share * m), m // 10)))
        k = self.n_topics or int(np.clip(round(np.sqrt(m / 20)), 8, self.max_topics))
        k = int(max(1, min(k, m // max(min_size, 1))))
        starts = principal_split_init(z, k, min_size)
        if y is not None and (np.asarray(y) >= 0).any():
            starts = self._warm_starts(z, np.asarray(y, dtype=int), starts, min_size)
        labels, _ = spherical_kmeans(z, starts)
        labels = _merge_close(z, labels, self.merge_threshold)
        labels = _dissolve_small(z, labels, min_size)
        ids = np.unique(labels)
        cents = l2_normalise(np.stack([X[labels == j].mean(axis=0) for j in ids]))
        sizes = np.array([(labels == j).sum() for j in ids])
        # Topics by size, largest first (ties by centroid, so the order is data-determined).
        order = sorted(range(len(ids)), key=lambda j: (-sizes[j], tuple(np.round(cents[j, :4], 6))))
        self.centroids_ = cents[order].astype(np.float32)
        self.min_size_ = min_size
        self.labels_ = self.predict(X)
        return self

    def _warm_starts(
        self, z: np.ndarray, previous: np.ndarray, fresh: np.ndarray, min_size: int
    ) -> np.ndarray:
        """Starting centroids from the previous topics, plus the fresh clusters they do not cover.

        Each previous topic with at least ``min_size`` rows gives one start. A fresh clustering (from the
        principal splits) runs too; each fresh cluster that is both poorly covered (best Jaccard overlap
        with a warm-started cluster below ``novelty_jaccard``) and distinct (centroid similarity to every
        warm start below ``novelty_similarity``) adds its centroid as one more start. Re-partitions of
        the same themes are not distinct, so they do not churn the topics.
        """
        warm = [
            z[previous == t].mean(axis=0)
            for t in range(previous.max() + 1)
            if (previous == t).sum() >= min_size
        ]
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

    def similarities(self, X: np.ndarray) -> np.ndarray:
        """Cosine similarity of each row (unit length, the reducer's space) with each centroid."""
        if not hasattr(self, "centroids_"):
            raise NotFittedError("StableClusters is not fitted: call fit(X) first.")
        return np.asarray(X, dtype=np.float32) @ self.centroids_.T

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The nearest centroid of each row, or -1 when it is below ``assign_threshold``."""
        return self.predict_with_similarity(X)[0]

    def predict_with_similarity(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict`, and each row's similarity to its nearest centroid."""
        X = np.asarray(X, dtype=np.float32)
        if len(X) == 0 or len(getattr(self, "centroids_", ())) == 0:
            self.similarities(X[:0])  # the not-fitted error
            return np.full(len(X), -1, dtype=int), np.zeros(len(X), dtype=np.float32)
        labels = np.empty(len(X), dtype=int)
        best = np.empty(len(X), dtype=np.float32)
        for lo in range(0, len(X), 16_384):  # in chunks: bounded memory for large windows
            sims = self.similarities(X[lo : lo + 16_384])
            top = sims.argmax(axis=1)
            score = sims[np.arange(len(sims)), top]
            top[score < self.assign_threshold] = -1
            labels[lo : lo + len(top)] = top
            best[lo : lo + len(top)] = score
        return labels, best
