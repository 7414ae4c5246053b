"""Topic discovery over the shared embeddings (no topic model ever embeds anything itself).

Registered models (:func:`build_topics`):

* ``topics.stable.v1`` (:class:`~pipeline.topics.stable.StableTopicModel`, the default): a ``BERTopic``
  whose slots hold the parts of :mod:`pipeline.topics.parts` (language centring and a deterministic PCA
  rotation; deterministic spherical k-means with merging, dissolving, an outlier floor and a warm start),
  with BERTopic's own c-TF-IDF and representation. Kept as centroids, so ``transform`` gives a text the
  topic ``fit`` gave it. Imported lazily (``import pipeline`` never imports BERTopic).
* ``topics.bertopic.v1`` (:class:`~pipeline.topics.legacy.BERTopicModel`): BERTopic's UMAP + HDBSCAN.
* ``topics.none.v1`` (:class:`~pipeline.topics.legacy.NoTopics`): the switched-off stage.

Topic ids of a fitted stable model can be renamed (``relabel``) to the stable ids of the ``topics``
registry; see :mod:`pipeline.topics.registry` (``pipeline.topics.registry``).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UnknownComponentError
from pipeline.topics.legacy import BERTopicModel, NoTopics, _fitted_version, stop_words
from pipeline.topics.parts import (
    LanguageCentredPCA,
    StableClusters,
    center_languages,
    content_sample,
    infer_languages,
    language_means,
    pca_basis,
    principal_split_init,
    spherical_kmeans,
)

if TYPE_CHECKING:
    from pipeline.topics.stable import StableTopicModel

__all__ = [
    "TOPIC_MODELS",
    "BERTopicModel",
    "LanguageCentredPCA",
    "NoTopics",
    "StableClusters",
    "StableTopicModel",
    "_fitted_version",
    "build_topics",
    "center_languages",
    "content_sample",
    "fit_topics",
    "infer_languages",
    "is_stable",
    "language_means",
    "load_topic_model",
    "pca_basis",
    "principal_split_init",
    "spherical_kmeans",
    "stop_words",
]

TOPIC_MODELS: dict[str, str] = {
    "topics.stable.v1": "pipeline.topics.stable:StableTopicModel",
    "topics.bertopic.v1": "pipeline.topics.legacy:BERTopicModel",
    "topics.none.v1": "pipeline.topics.legacy:NoTopics",
}
"""Registered topic models: name -> ``module:class`` (imported when built)."""


def __getattr__(name: str) -> Any:
    # StableTopicModel subclasses BERTopic: import it (and BERTopic) only when asked for.
    if name == "StableTopicModel":
        return importlib.import_module("pipeline.topics.stable").StableTopicModel
    raise AttributeError(f"module 'pipeline.topics' has no attribute {name!r}")


def is_stable(model: object) -> bool:
    """Whether ``model`` is a ``topics.stable.v1`` model, without importing BERTopic to find out (no
    instance can exist before its module is imported)."""
    module = sys.modules.get("pipeline.topics.stable")
    return module is not None and isinstance(model, module.StableTopicModel)


def _resolve(name: str) -> type:
    if name not in TOPIC_MODELS:
        raise UnknownComponentError(f"Unknown topic model {name!r}. Valid names: {sorted(TOPIC_MODELS)}")
    module, cls = TOPIC_MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_topics(name: str, **options: object) -> Any:
    """Create a topic model from its registered name."""
    return _resolve(name)(**options)


def load_topic_model(path: Any) -> Any:
    """Read a stored topic model of any registered kind (:meth:`BERTopicModel.load` dispatches)."""
    return BERTopicModel.load(path)


def fit_topics(
    model: Any,
    texts: list[str],
    embeddings: np.ndarray,
    languages: list[str] | None = None,
    previous: Any = None,
) -> Any:
    """Fit any registered topic model, passing languages (and a previous model) to those that use them.

    Args:
        model: An unfitted model from :func:`build_topics`.
        texts: The texts.
        embeddings: Their embeddings.
        languages: Their languages (used by ``topics.stable.v1``).
        previous: The previous fit; a ``topics.stable.v1`` refit starts from its topics.
    """
    if is_stable(model):
        warm = previous if is_stable(previous) else None
        return model.fit(texts, embeddings, languages=languages, warm_start=warm)
    return model.fit(texts, embeddings)


def assign_topics(model: Any, embeddings: np.ndarray, languages: list[str] | None = None) -> np.ndarray:
    """Topic ids of embedding rows under any fitted model (languages go to the models that use them)."""
    if is_stable(model):
        return model.transform(embeddings, languages=languages)
    return model.transform(embeddings)
