"""``topics.stable.v1``: themes that stay put, as a ``BERTopic`` with the stable parts in its slots.

:class:`StableTopicModel` *is* a :class:`bertopic.BERTopic`: language centring and a deterministic PCA
rotation in ``umap_model`` (:class:`~pipeline.topics.parts.LanguageCentredPCA`), deterministic spherical
k-means with merging, dissolving, an outlier floor and a warm start in ``hdbscan_model``
(:class:`~pipeline.topics.parts.StableClusters`), BERTopic's own c-TF-IDF (``vectorizer_model`` with the
multilingual stop words, ``ctfidf_model``) and representation. Precomputed embeddings go in through
``fit_transform(docs, embeddings=...)``, so BERTopic's API works on the nightly model: ``get_topic_info``,
``topics_over_time``, ``visualize_*``, ``reduce_topics``, ``merge_topics``, representation models.

On top, what the pipeline needs: the window's languages, a content-hash sample for large windows (BERTopic
fits on the sample, the rest is assigned), stable registry ids (:meth:`StableTopicModel.relabel`),
representative quotes, suggested tags, and the model store's files (:mod:`pipeline.topics.stable_store`).

BERTopic numbers its topics 0..k-1 by size; ``topic_ids_[j]`` is the registry id of BERTopic's topic ``j``,
and the pipeline's ``transform(embeddings, languages=...)`` returns registry ids. BERTopic's own
``transform(docs, embeddings=...)`` returns BERTopic's ids.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bertopic import BERTopic
from sklearn.feature_extraction.text import CountVectorizer

from pipeline import clock
from pipeline.config import DEFAULT_LANGUAGES
from pipeline.errors import InsufficientDataError, NotFittedError
from pipeline.schema import TOPIC_INFO_COLUMNS
from pipeline.topics.legacy import _fitted_version, save_version, stop_words
from pipeline.topics.parts import LanguageCentredPCA, StableClusters, content_sample

log = logging.getLogger(__name__)

# Words of three letters or more ("english" token rules would strip every non-ASCII letter).
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{3,}\b"
_CHUNK = 16_384


class StableTopicModel(BERTopic):
    """Themes that stay put: a language-centred, deterministic BERTopic with stable topic ids.

    Args:
        languages: Languages whose stop words are removed from keywords (the window's are added).
        n_topics: Starting number of clusters; None picks ``sqrt(n / 20)`` within [8, max_topics].
        max_topics: Upper bound of the automatic number of clusters.
        min_topic_size: Topics smaller than this (or than ``min_topic_share`` of the fit rows) are
            dissolved into their nearest neighbours.
        min_topic_share: See ``min_topic_size``.
        merge_threshold: Topics whose centroids are at least this similar (cosine) are merged.
        n_components: Leading principal axes the clustering runs on.
        center_languages: Subtract the per-language mean embedding (stored with the model).
        min_language_docs: Languages with fewer fit texts use the overall mean.
        assign_threshold: The similarity floor: below it a text is an outlier (-1).
        max_fit_docs: Windows larger than this are fitted on a content-hash sample of this size; the
            rest is assigned.
        n_keywords: Keywords kept per topic (the label uses the first three).
        n_quotes: Representative quotes kept per topic (the texts nearest the centroid).
        keywords: Keep c-TF-IDF keywords as the topics' labels; False labels a topic by its first quote
            (BERTopic's c-TF-IDF is computed either way: its API needs it).
        novelty_jaccard: In a warm-started refit, see :class:`~pipeline.topics.parts.StableClusters`.
        novelty_similarity: See ``novelty_jaccard``.
        seed: Recorded only: the fit depends neither on a seed nor on the order of its input.
        representation_model: Any BERTopic representation model (e.g. ``KeyBERTInspired()``); None keeps
            the c-TF-IDF words. Not stored with the model (its representations are).
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
        representation_model: Any = None,
    ) -> None:
        self.languages = languages or list(DEFAULT_LANGUAGES)
        self.n_topics = n_topics
        self.max_topics = max_topics
        self.min_topic_share = min_topic_share
        self.merge_threshold = merge_threshold
        self.n_components = n_components
        self.center_languages = center_languages
        self.min_language_docs = min_language_docs
        self.assign_threshold = assign_threshold
        self.max_fit_docs = max_fit_docs
        self.n_keywords = n_keywords
        self.n_quotes = n_quotes
        self.keywords = keywords
        self.novelty_jaccard = novelty_jaccard
        self.novelty_similarity = novelty_similarity
        self.seed = seed
        super().__init__(
            embedding_model=None,
            umap_model=LanguageCentredPCA(center_languages, min_language_docs),
            hdbscan_model=StableClusters(
                n_topics=n_topics,
                max_topics=max_topics,
                min_topic_size=min_topic_size,
                min_topic_share=min_topic_share,
                merge_threshold=merge_threshold,
                n_components=n_components,
                assign_threshold=assign_threshold,
                novelty_jaccard=novelty_jaccard,
                novelty_similarity=novelty_similarity,
            ),
            vectorizer_model=self._vectorizer(self.languages),
            representation_model=representation_model,
            top_n_words=int(min(100, max(10, n_keywords))),
            min_topic_size=min_topic_size,
            calculate_probabilities=False,
            language="multilingual",
            verbose=False,
        )

    @staticmethod
    def _vectorizer(languages: list[str]) -> CountVectorizer:
        return CountVectorizer(
            stop_words=stop_words(languages), token_pattern=TOKEN_PATTERN, min_df=1, max_features=50_000
        )

    # ---- fitting ---------------------------------------------------------------------------------

    def fit(  # type: ignore[override]
        self,
        documents: list[str],
        embeddings: np.ndarray | None = None,
        languages: list[str] | None = None,
        warm_start: StableTopicModel | None = None,
    ) -> StableTopicModel:
        """Fit topics on a window of texts and their precomputed embeddings.

        Args:
            documents: The (redacted) texts: c-TF-IDF keywords and representative quotes.
            embeddings: One row per text, from the pipeline's embedder (never computed here).
            languages: The language of each text; None skips per-language centring.
            warm_start: The previous model (a refit): its topics of the fit rows go to the clustering
                as BERTopic's ``y`` and start it, so themes that did not change come out the same.

        Returns:
            self, with ``labels_`` holding the topic (registry id) of every input text: what
            :meth:`transform` returns for them.
        """
        if isinstance(documents, pd.DataFrame | pd.Series):
            raise TypeError(
                "fit() takes a list of strings, not a DataFrame/Series: pass df['text'].tolist()."
            )
        if embeddings is None:
            raise ValueError("topics.stable.v1 never embeds: pass embeddings=... (the pipeline's vectors).")
        texts = ["" if t is None else str(t) for t in documents]
        emb = np.asarray(embeddings)
        n = len(texts)
        if n != len(emb):
            raise ValueError(f"texts ({n}) and embeddings ({len(emb)}) differ in length")
        if languages is not None and len(languages) != n:
            raise ValueError(f"languages ({len(languages)}) and texts ({n}) differ in length")
        if n < 10:
            raise InsufficientDataError(
                f"Topic fitting needs at least 10 texts, got {n}: pass more answers (or a saved model)."
            )
        langs = [str(v) for v in languages] if languages is not None else None
        sample = content_sample(texts, self.max_fit_docs)
        sample_langs = [langs[i] for i in sample] if langs is not None else None
        y = None
        if warm_start is not None and len(warm_start.topic_ids_):
            old = warm_start.transform(emb[sample], languages=sample_langs)
            position = {int(t): j for j, t in enumerate(warm_start.topic_ids_)}
            y = np.asarray([position.get(int(t), -1) for t in old], dtype=int)
        self.vectorizer_model = self._vectorizer(sorted(set(self.languages) | set(langs or [])))
        docs = [texts[i] for i in sample]
        has_words = True
        with self.umap_model.bind_languages(sample_langs):
            try:
                super().fit_transform(docs, embeddings=emb[sample], y=y)
            except (ValueError, TypeError) as exc:
                # BERTopic's c-TF-IDF fails on fewer than two distinct words (texts of stop words only).
                if len(getattr(self.vectorizer_model, "vocabulary_", None) or {}) >= 2:
                    raise
                log.warning("topics: no keywords (%s)", exc)
                has_words = False
                self.vectorizer_model = CountVectorizer(token_pattern=r"(?u)\S+")
                super().fit_transform([f"{t} - ~" for t in docs], embeddings=emb[sample], y=y)

        k = len(self.topic_sizes_) - int(-1 in self.topic_sizes_)
        self.topic_ids_ = np.arange(k, dtype=int)
        index, best = self._assign(emb, langs)
        self.labels_ = index.copy()
        self.fitted_at_ = clock.utcnow().replace(microsecond=0)
        self.version_ = _fitted_version("stable", self.fitted_at_, self.hdbscan_model.centroids_, n)
        self.keywords_ = {
            j: (
                [w for w, _ in (self.get_topic(j) or []) if w][: self.n_keywords]
                if self.keywords and has_words
                else []
            )
            for j in range(k)
        }
        self.quotes_ = self._quotes(texts, index, best)
        self.sizes_ = {j: int((index == j).sum()) for j in range(k)}
        self.fit_outlier_share_ = float((index == -1).mean())
        self.suggested_tags_: dict[int, str | None] = {}
        self.tag_shares_: dict[int, float] = {}
        self.fit_languages_ = sorted(set(langs)) if langs else []
        log.info(
            "topics: %d topics on %d texts (fitted on %d), %.1f%% outliers",
            k,
            n,
            len(sample),
            100 * self.fit_outlier_share_,
        )
        return self

    def fit_transform(  # type: ignore[override]
        self,
        documents: list[str],
        embeddings: np.ndarray | None = None,
        images: list[str] | None = None,
        y: np.ndarray | None = None,
        languages: list[str] | None = None,
    ) -> tuple[list[int], None]:
        """BERTopic's entry point: :meth:`fit`, then BERTopic's topic of every document.

        ``y`` (BERTopic's semi-supervised labels) is not supported: a refit starts from the previous
        model through :meth:`fit`'s ``warm_start``.
        """
        if images is not None or y is not None:
            raise ValueError(
                "topics.stable.v1 takes texts and embeddings only (warm starts: fit(warm_start=))."
            )
        self.fit(documents, embeddings, languages=languages)
        return self._bertopic_ids(self.labels_).tolist(), None

    def _assign(self, embeddings: np.ndarray, languages: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """BERTopic's topic of each row and its similarity to that topic's centroid, in chunks."""
        emb = np.asarray(embeddings)
        index = np.full(len(emb), -1, dtype=int)
        best = np.zeros(len(emb), dtype=np.float32)
        mapping = self.topic_mapper_.get_mappings(original_topics=True)
        n_clusters = len(self.hdbscan_model.centroids_)
        lookup = np.asarray([mapping.get(c, -1) for c in range(n_clusters)] + [-1], dtype=int)
        for lo in range(0, len(emb), _CHUNK):
            part = None if languages is None else list(languages[lo : lo + _CHUNK])
            x = self.umap_model.transform(emb[lo : lo + _CHUNK], part)
            labels, sims = self.hdbscan_model.predict_with_similarity(x)
            index[lo : lo + len(x)] = lookup[labels]  # -1 indexes the trailing -1
            best[lo : lo + len(x)] = sims
        return index, best

    def _quotes(self, texts: list[str], index: np.ndarray, best: np.ndarray) -> dict[int, list[str]]:
        """The distinct texts nearest each centroid (texts are redacted upstream)."""
        out: dict[int, list[str]] = {}
        for j in range(len(self.topic_ids_)):
            rows = np.flatnonzero(index == j)
            picked: list[str] = []
            for r in rows[np.argsort(-best[rows], kind="stable")]:
                text = " ".join(texts[r].split())
                if text and text not in picked:
                    picked.append(text[:300])
                if len(picked) >= self.n_quotes:
                    break
            out[j] = picked
        return out

    # ---- using -----------------------------------------------------------------------------------

    def _check(self) -> None:
        if not hasattr(self, "topic_ids_"):
            raise NotFittedError("StableTopicModel is not fitted: call fit(texts, embeddings) or load(path).")
        k = len(self.topic_sizes_) - int(-1 in self.topic_sizes_)
        if k != len(self.topic_ids_):
            raise ValueError(
                "BERTopic's topics were reduced or merged after the fit: the registry's ids no longer apply "
                "to them; refit (or reload the stored version) to assign."
            )

    @property
    def version(self) -> str:
        """Version string recorded on every row."""
        self._check()
        return self.version_

    @property
    def language_means_(self) -> dict[str, np.ndarray]:
        """The reducer's per-language mean embeddings (the model's language centring)."""
        return self.umap_model.language_means_

    @property
    def overall_mean_(self) -> np.ndarray:
        """The reducer's mean for languages without their own."""
        return self.umap_model.overall_mean_

    def _bertopic_ids(self, stable: np.ndarray) -> np.ndarray:
        position = {int(t): j for j, t in enumerate(self.topic_ids_)}
        return np.asarray([position.get(int(t), -1) for t in stable], dtype=int)

    def centred(self, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
        """Embeddings in the model's language-centred space (before the rotation)."""
        self._check()
        return self.umap_model.centred(np.asarray(embeddings), languages)

    def transform(  # type: ignore[override]
        self,
        documents: Any,
        embeddings: np.ndarray | None = None,
        images: list[str] | None = None,
        languages: list[str] | None = None,
    ) -> Any:
        """Topics of new texts, two ways.

        * ``transform(embeddings, languages=...)`` (the pipeline): an array of registry ids, -1 for
          outliers; ``languages`` None infers each row's language from the nearest stored language mean.
        * ``transform(docs, embeddings=...)`` (BERTopic's signature): ``(BERTopic topic ids, None)``.
        """
        self._check()
        if embeddings is None and isinstance(documents, np.ndarray) and documents.ndim == 2:
            index, _ = self._assign(documents, languages)
            return np.where(index >= 0, self.topic_ids_[np.maximum(index, 0)], -1).astype(int)
        if embeddings is None or images is not None:
            raise ValueError("topics.stable.v1 never embeds: call transform(docs, embeddings=...).")
        index, _ = self._assign(embeddings, languages)
        return index.tolist(), None

    def label(self, topic_id: int) -> str | None:
        """The first three keywords, else the start of the topic's most central quote (registry id)."""
        words = self.keywords_.get(int(topic_id), [])
        if words:
            return " / ".join(words[:3])
        quotes = self.quotes_.get(int(topic_id), [])
        return quotes[0][:60] if quotes else None

    def labels(self, ids: np.ndarray) -> list[str | None]:
        """Labels for an array of registry ids (None for outliers)."""
        return [self.label(int(t)) if t != -1 else None for t in ids]

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
            top = min(counts.items(), key=lambda kv: (-kv[1], kv[0])) if counts else None
            share = top[1] / max(len(rows), 1) if top else 0.0
            self.tag_shares_[int(t)] = float(share)
            self.suggested_tags_[int(t)] = top[0] if top and share >= min_share else None
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

    # ---- persistence (pipeline.topics.stable_store) ----------------------------------------------

    def save(self, path: str | Path, *args: Any, **kwargs: Any) -> Path:  # type: ignore[override]
        """Write the model's files to a folder (no pickle; see :mod:`pipeline.topics.stable_store`)."""
        if args or kwargs:
            raise ValueError("StableTopicModel.save(path) takes a folder only: it always writes safe files.")
        from pipeline.topics.stable_store import save_stable

        self._check()
        return save_stable(self, Path(path))

    def save_version(
        self, path: str | Path, encoder: dict, metrics: dict, training_data: dict | None = None
    ) -> Path:
        """Write the model as a model-store version: :meth:`save`'s files plus ``manifest.json``."""
        return save_version(self, path, encoder, metrics, training_data)

    @classmethod
    def load(cls, path: str | Path, embedding_model: Any = None) -> StableTopicModel:  # type: ignore[override]
        """Read a folder written by :meth:`save`, or by an earlier version (``topics.json`` +
        ``centroids.npy``, converted on the fly)."""
        from pipeline.topics.stable_store import load_stable

        if embedding_model is not None:
            raise ValueError("topics.stable.v1 never embeds: load(path) takes no embedding model.")
        return load_stable(Path(path))
