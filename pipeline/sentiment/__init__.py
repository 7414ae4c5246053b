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

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.embed import Embedder
from pipeline.errors import ConfigError, UnknownComponentError
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
    """Load a saved sentiment model folder (any backend): its ``manifest.json`` names the class."""
    folder = Path(path)
    manifest_file = folder / "manifest.json"
    if not manifest_file.exists():
        raise ConfigError(
            f"{folder} is not a sentiment model folder (no manifest.json). Train one with "
            "`feedback sentiment train --data FILE --out DIR`."
        )
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    return _resolve(str(manifest.get("name"))).load(folder)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved model folder."""
    return json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))


def sentiment_for_run(
    name: str,
    options: Mapping[str, Any],
    embedder: Embedder,
    stored_scores: Callable[[], pd.DataFrame] | None = None,
    response_vector: str = "sentence_mean",
) -> Any:
    """The sentiment model a run uses, from the config's ``sentiment`` section.

    Options understood here (the rest go to the model's constructor):

    * ``model_dir``: a trained model folder (labelled data or scores); its embedder must be the run's.
      :func:`pipeline.config.load_config` resolves a relative one against the config file's folder.
    * ``learn_from_scores``: ``{min_rows: 500}`` fits ``sentiment.embedding_lr.v1`` on the scores already
      stored in the warehouse once at least ``min_rows`` scored answers exist; before that the named
      (zero-shot) model is used. ``stored_scores`` returns those rows (``text``, ``score``, ``survey_type``).

    The model's ``source`` (zero_shot / scores / labels / pretrained) is recorded with every run.
    ``response_vector`` is how the run makes answers' vectors (the config's): a model learned here is
    trained on such vectors, and a loaded one trained on others is warned about.
    """
    opts = dict(options)
    model_dir = opts.pop("model_dir", None)
    learn = opts.pop("learn_from_scores", None)
    if model_dir:
        model = load_sentiment(model_dir)
        trained_on = getattr(model, "embedder_id_", None)
        if trained_on and trained_on != embedder.model_id:
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
                model_dir,
                trained_mode,
                response_vector,
            )
        log.info("sentiment: %s from %s (source %s)", model.version, model_dir, model.source)
        return model
    if learn and stored_scores is not None:
        settings = learn if isinstance(learn, Mapping) else {}
        min_rows = int(settings.get("min_rows", 500))
        rows = stored_scores()
        rows = rows[rows["text"].notna() & rows["score"].notna()] if len(rows) else rows
        if len(rows) >= min_rows:
            from pipeline.embed.response import AnswerEmbedder

            texts = rows["text"].astype(str).tolist()
            langs = rows["language"].astype(str).tolist() if "language" in rows.columns else None
            model = EmbeddingSentiment(**{k: v for k, v in settings.items() if k != "min_rows"})
            # The answers' vectors as the run makes them (the stored ones are read from the cache).
            answers = AnswerEmbedder(embedder, response_vector)  # type: ignore[arg-type]
            model.fit_scores(
                answers.embed(texts, languages=langs),
                rows["score"].astype(float).tolist(),
                rows["survey_type"].astype(str).tolist(),
                texts,
                embedder_id=embedder.model_id,
            )
            log.info("sentiment: learned from %d stored scores (%s)", len(rows), model.version)
            return model
        log.info("sentiment: %d scored answers stored, fewer than %d: zero-shot default", len(rows), min_rows)
    if name == EmbeddingSentiment.name:
        raise ConfigError(
            f"sentiment model {name!r} is trained: set sentiment.options.model_dir to a folder written by "
            "`feedback sentiment train`, or use learn_from_scores, or the zero-shot 'sentiment.prototype.v1'."
        )
    return build_sentiment(name, **opts).fit(embedder)


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
    "read_manifest",
    "sentiment_for_run",
]
