"""Sentiment over embeddings: a label (negative/neutral/positive/mixed) and a score in -1..1.

Three sources of supervision behind one interface (:class:`SentimentModel`):

* ``sentiment.prototype.v1`` (the default): zero-shot, from anchor phrases written for this project;
* ``sentiment.embedding_lr.v1``: trained on labelled texts, or on the survey's own scores
  (``fit_scores``), saved to and loaded from a model folder with a manifest;
* ``sentiment.transformers.v1``: any Hugging Face sequence-classification model by name or local path.

Example:
    >>> model = build_sentiment("sentiment.prototype.v1").fit(embedder)
    >>> labels, scores = model.predict(embedder.embed(["Great service!"]))
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.embed import Embedder
from pipeline.errors import ConfigError, UnknownComponentError
from pipeline.model_store import read_manifest, resolve_version_dir
from pipeline.sentiment.base import (
    LABELS,
    POLARITIES,
    SOURCES,
    SentimentModel,
    combine_sentences,
    label_from_score,
    proba_to_scores,
)
from pipeline.sentiment.prototype import ANCHORS, PrototypeSentiment
from pipeline.sentiment.supervised import EmbeddingSentiment, labels_from_scores

log = logging.getLogger(__name__)

SENTIMENT_MODELS: dict[str, str] = {
    "sentiment.prototype.v1": "pipeline.sentiment.prototype:PrototypeSentiment",
    "sentiment.embedding_lr.v1": "pipeline.sentiment.supervised:EmbeddingSentiment",
    "sentiment.transformers.v1": "pipeline.sentiment.transformers_backend:TransformersSentiment",
}
"""Registered sentiment models (configs and model manifests refer to these names)."""

DEFAULT_SENTIMENT = "sentiment.prototype.v1"


def _resolve(name: str) -> type:
    import importlib

    if name not in SENTIMENT_MODELS:
        raise UnknownComponentError(
            f"Unknown sentiment model {name!r}. Valid names: {sorted(SENTIMENT_MODELS)}"
        )
    module, _, cls = SENTIMENT_MODELS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_sentiment(name: str, **options: Any) -> Any:
    """Create an (unfitted) sentiment model from its registered name and options."""
    return _resolve(name)(**options)


def load_sentiment(path: str | Path) -> Any:
    """Load a saved sentiment model: a version folder (any backend: its manifest names the class), or a
    registry folder's promoted version."""
    folder = resolve_version_dir(path, "sentiment")
    if folder is None:
        raise ConfigError(
            f"{path} is neither a sentiment model folder (no manifest.json) nor a registry with a promoted "
            "version. Train one with `feedback sentiment train --data FILE --out DIR`."
        )
    manifest = read_manifest(folder, "sentiment")
    return _resolve(str(manifest["component"])).load(folder)


def sentiment_for_run(
    name: str,
    options: Mapping[str, Any],
    embedder: Embedder,
    response_vector: str = "sentence_mean",
    promoted: str | Path | None = None,
) -> Any:
    """The sentiment model a run uses, from the config's ``sentiment`` section.

    In order: ``options.model_dir`` (a version folder or a registry folder, any path; a relative one is
    resolved against the config file's folder), else ``promoted`` (the model store's promoted sentiment
    version, whose encoder must be the run's), else the named (zero-shot) model built on ``embedder``.
    ``options.learn_from_scores`` is read by the weekly ``retrain-sentiment`` flow, which trains a
    version from the stored scores and promotes it through the gate; a nightly run never trains.

    The model's ``source`` (zero_shot / scores / labels / pretrained) is recorded with every run.
    ``response_vector`` is how the run makes answers' vectors (the config's): a loaded model trained on
    other vectors is warned about.
    """
    opts = dict(options)
    model_dir = opts.pop("model_dir", None)
    opts.pop("learn_from_scores", None)
    where = model_dir or promoted
    if where:
        model = load_sentiment(where)
        trained_on = getattr(model, "embedder_id_", None)
        if trained_on and trained_on != embedder.model_id:
            if not model_dir:  # the store's version was trained for another encoder: not this run's model
                log.warning(
                    "promoted sentiment %s was trained on %r embeddings, the run embeds with %r: using %s",
                    model.version,
                    trained_on,
                    embedder.model_id,
                    name,
                )
                return _named(name, opts, embedder)
            raise ConfigError(
                f"sentiment model {model_dir} was trained on embeddings of {trained_on!r}, but this run "
                f"embeds with {embedder.model_id!r}: retrain it with the run's embedder or change embedder."
            )
        spec = getattr(model, "embedder_spec_", None) or {}
        trained_mode = spec.get("response_vector", "whole")
        if trained_on and trained_mode != response_vector:
            log.warning(
                "sentiment model %s was trained on %r answer vectors but this run gives it %r ones (config "
                "response_vector): retrain it (feedback sentiment train) for its measured quality",
                where,
                trained_mode,
                response_vector,
            )
        log.info("sentiment: %s from %s (source %s)", model.version, where, model.source)
        return model
    return _named(name, opts, embedder)


def _named(name: str, options: Mapping[str, Any], embedder: Embedder) -> Any:
    if name == EmbeddingSentiment.name:
        raise ConfigError(
            f"sentiment model {name!r} is trained: set sentiment.options.model_dir to a folder written by "
            "`feedback sentiment train`, or promote a version (feedback sentiment promote), or use the "
            "zero-shot 'sentiment.prototype.v1'."
        )
    return build_sentiment(name, **options).fit(embedder)


__all__ = [
    "ANCHORS",
    "DEFAULT_SENTIMENT",
    "EmbeddingSentiment",
    "LABELS",
    "POLARITIES",
    "PrototypeSentiment",
    "SENTIMENT_MODELS",
    "SOURCES",
    "SentimentModel",
    "build_sentiment",
    "combine_sentences",
    "label_from_score",
    "labels_from_scores",
    "load_sentiment",
    "proba_to_scores",
    "sentiment_for_run",
]
