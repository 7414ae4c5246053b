"""Fit the configured topic model on a window of stored answers, keep the registry's ids (splits and
merges into ``topic_history``) and promote it through the gate."""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.embed.response import response_vectors
from pipeline.enrich import Models
from pipeline.schema import TABLE_KEYS
from pipeline.tagging.lifecycle import encoder_spec
from pipeline.topics import (
    BERTopicModel,
    NoTopics,
    assign_topics,
    build_topics,
    fit_topics,
    is_stable,
)
from pipeline.topics.registry import first_match, match_topics
from pipeline.topics.versions import load_promoted_topics, promote_fit
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def next_topic_id(wh: Warehouse, config: EnrichmentConfig, previous: BERTopicModel | None) -> int:
    """The first never-used topic id (ids of retired topics are not reused)."""
    ids = [int(t) for t in previous.topic_ids_] if previous is not None else []
    if wh.table_exists(config.tables.topics):
        ids += [int(t) for t in wh.read(config.tables.topics, ["topic_id"])["topic_id"]]
    return max(ids) + 1 if ids else 0


def window_languages(values: list | np.ndarray | pd.Series) -> list[str] | None:
    """Languages as topic models take them: "" for unknown ones, None when none is known."""
    langs = [None if v is None or pd.isna(v) else str(v) for v in values]
    return None if all(v is None for v in langs) else ["" if v is None else v for v in langs]


def window_vectors(config: EnrichmentConfig, models: Models, window: pd.DataFrame) -> np.ndarray:
    """The response vectors of the window's texts, from the embedding cache.

    Stored answers' vectors are in the cache (sentence means, written by the nightly run); an answer
    missing there is encoded whole (and cached).
    """
    return response_vectors(
        models.embedder, window["text"].astype(str).tolist(), None, config.response_vector
    )


def fit_window_topics(
    config: EnrichmentConfig,
    wh: Warehouse,
    models: Models,
    window: pd.DataFrame,
    now: datetime | None = None,
    emb: np.ndarray | None = None,
) -> BERTopicModel | NoTopics | None:
    """Fit the configured topic model on a window and store it, keeping the registry's topic ids.

    For ``topics.stable.v1`` the new topics are matched to the previous model's by the overlap of their
    texts in the window (:func:`pipeline.topics.registry.match_topics`): continuing topics keep their
    ids, splits and merges are written to the ``topic_history`` table, and each topic gets a suggested
    taxonomy tag from the tags of its texts (the tagger's, for texts not tagged yet).

    Args:
        config: The enrichment config.
        wh: The warehouse (previous model, registry, history).
        models: The run's models (embedder, tagger).
        window: The window from :func:`topic_window`.
        now: The refit's time (history records).
        emb: The window's vectors (:func:`window_vectors`); read from the cache when None.

    Returns:
        The fitted and promoted model, or None when the window has fewer than ``topics.min_docs`` texts
        or the gate refused the refit.
    """
    if len(window) < config.topics.min_docs:
        log.info(
            "topics: %d texts in the window, fewer than min_docs=%d; skipped",
            len(window),
            config.topics.min_docs,
        )
        return None
    now = now or utcnow()
    texts = window["text"].astype(str).tolist()
    languages = window_languages(window["language"].tolist())
    if emb is None:
        emb = window_vectors(config, models, window)
    options = {"languages": config.languages, **config.topics.options}
    previous = load_promoted_topics(config, wh, models.embedder.model_id)
    model = fit_topics(build_topics(config.topics.name, **options), texts, emb, languages, previous)
    tags = list(window["tags"])
    if is_stable(model):
        missing = [i for i, v in enumerate(tags) if not isinstance(v, list | tuple | np.ndarray)]
        if missing and models.tagger is not None:
            reads_texts = bool(getattr(models.tagger, "needs_texts", False))
            predicted, _ = models.tagger.predict(
                emb[missing], **({"texts": [texts[i] for i in missing]} if reads_texts else {})
            )
            for i, found in zip(missing, predicted, strict=True):
                tags[i] = list(found)
        model.suggest_tags([list(v) if v is not None else [] for v in tags], config.topics.tag_share)
        start = next_topic_id(wh, config, previous)
        if previous is not None and len(previous.topic_ids_):
            old = assign_topics(previous, emb, languages)
            match = match_topics(
                old,
                model.labels_,
                start,
                min_jaccard=config.topics.min_jaccard,
                old_ids=[int(t) for t in previous.topic_ids_],
            )
        else:
            match = first_match(list(model.topic_ids_), start)
        model.relabel(match.mapping)
    if not isinstance(model, NoTopics):
        decision = promote_fit(
            config,
            wh,
            model,
            previous,
            texts,
            emb,
            languages,
            tags,
            {
                **encoder_spec(config.embedder.name, config.embedder.options, models.embedder),
                "response_vector": config.response_vector,
            },
            window.attrs.get("start"),
        )
        if not decision.promoted:
            return None
    if is_stable(model):
        history = match.history(model.version, pd.Timestamp(now))
        if len(history):
            wh.upsert(config.tables.topic_history, history, key=TABLE_KEYS["topic_history"])
        log.info(
            "topics: refit %s: %s",
            model.version,
            pd.Series([e["event"] for e in match.events]).value_counts().to_dict(),
        )
    return model
