"""The files of a ``topics.stable.v1`` version: no pickle, and the custom parts kept by us.

BERTopic's safetensors save keeps BERTopic's own state (topic representations, sizes, mapper, topic
embeddings, c-TF-IDF and its vocabulary) but not custom ``umap_model`` / ``hdbscan_model`` parts. So a
version folder holds::

    stable.json            the pipeline's state: registry ids, keywords, quotes, sizes, suggested tags,
                           parameters, version, and the parts' parameters
    language_means.npy     LanguageCentredPCA: one row per language (order in stable.json)
    overall_mean.npy       LanguageCentredPCA: the mean used for other languages
    rotation.npy           LanguageCentredPCA: the principal axes (absent: identity)
    centroids.npy          StableClusters: one row per cluster, in the rotated space
    bertopic/              BERTopic's safetensors save (config.json, topics.json,
                           topic_embeddings.safetensors, ctfidf.safetensors, ctfidf_config.json)

and :func:`load_stable` plugs the parts back into a :class:`~pipeline.topics.stable.StableTopicModel`.
Versions written before the model was a BERTopic (``topics.json`` + ``centroids.npy``, also what the
upgrade from the old ``topic_models`` table produces) are converted on load: their centroids live in the
centred space, so their rotation is the identity and they assign exactly as before.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import FeedbackError

if TYPE_CHECKING:
    from pipeline.topics.stable import StableTopicModel

META = "stable.json"
FORMAT = 2
_PARAMS = (
    "languages",
    "n_topics",
    "max_topics",
    "min_topic_size",
    "min_topic_share",
    "merge_threshold",
    "n_components",
    "center_languages",
    "min_language_docs",
    "assign_threshold",
    "max_fit_docs",
    "n_keywords",
    "n_quotes",
    "keywords",
    "novelty_jaccard",
    "novelty_similarity",
    "seed",
)


def is_stable_folder(folder: Path) -> bool:
    """Whether a folder holds a ``topics.stable.v1`` model (this format or the earlier one)."""
    if (folder / META).exists():
        return True
    legacy = folder / "topics.json"
    if not legacy.exists():
        return False
    return json.loads(legacy.read_text(encoding="utf-8")).get("name") == "topics.stable.v1"


def _keyed(d: dict) -> dict[str, Any]:
    return {str(k): v for k, v in d.items()}


def save_stable(model: StableTopicModel, folder: Path) -> Path:
    """Write a fitted model's files (see the module docstring)."""
    from bertopic import _save_utils

    folder.mkdir(parents=True, exist_ok=True)
    reducer, clusters = model.umap_model, model.hdbscan_model
    order = sorted(reducer.language_means_)
    dim = int(reducer.overall_mean_.shape[0])
    meta = {
        "name": model.name,
        "format": FORMAT,
        "version": model.version_,
        "fitted_at": model.fitted_at_.isoformat(),
        "topic_ids": [int(t) for t in model.topic_ids_],
        "keywords": _keyed(model.keywords_),
        "quotes": _keyed(model.quotes_),
        "sizes": _keyed(model.sizes_),
        "suggested_tags": _keyed(model.suggested_tags_),
        "tag_shares": _keyed(model.tag_shares_),
        "fit_outlier_share": model.fit_outlier_share_,
        "fit_languages": model.fit_languages_,
        "dim": dim,
        "language_order": order,
        "params": {k: getattr(model, k) for k in _PARAMS},
        # A model converted from an earlier release has no BERTopic state of its own to save.
        "bertopic": bool(model.topics_),
    }
    means = np.stack([reducer.language_means_[k] for k in order]) if order else np.zeros((0, dim))
    np.save(folder / "language_means.npy", means.astype(np.float32))
    np.save(folder / "overall_mean.npy", reducer.overall_mean_.astype(np.float32))
    if reducer.rotation_ is not None:
        np.save(folder / "rotation.npy", reducer.rotation_.astype(np.float32))
    np.save(folder / "centroids.npy", clusters.centroids_.astype(np.float32))
    if meta["bertopic"]:
        # BERTopic's safetensors save, without its warning about an embedding model: we never embed.
        sub = folder / "bertopic"
        sub.mkdir(exist_ok=True)
        if model.topic_embeddings_ is not None:
            _save_utils.save_hf(model=model, save_directory=sub, serialization="safetensors")
        _save_utils.save_topics(model=model, path=sub / "topics.json")
        _save_utils.save_config(model=model, path=sub / "config.json", embedding_model=None)
        if model.c_tf_idf_ is not None:
            vocab = model.vectorizer_model.vocabulary_  # numpy ints: not JSON
            model.vectorizer_model.vocabulary_ = {str(w): int(i) for w, i in vocab.items()}
            _save_utils.save_ctfidf(model=model, save_directory=sub, serialization="safetensors")
            _save_utils.save_ctfidf_config(model=model, path=sub / "ctfidf_config.json")
    (folder / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


def _pipeline_state(model: StableTopicModel, meta: dict) -> None:
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


def _bertopic_state(model: StableTopicModel, folder: Path) -> None:
    """BERTopic's own state from its safetensors save (what ``BERTopic.load`` restores)."""
    import scipy.sparse as sp
    from bertopic._bertopic import TopicMapper
    from bertopic._save_utils import load_local_files
    from sklearn.feature_extraction.text import CountVectorizer

    topics, _, tensors, ctfidf, ctfidf_config, _ = load_local_files(folder)
    model.topic_embeddings_ = tensors["topic_embeddings"] if tensors else None
    model.topic_representations_ = {
        int(k): [tuple(w) for w in v] for k, v in topics["topic_representations"].items()
    }
    model.topics_ = topics["topics"]
    model.topic_sizes_ = {int(k): v for k, v in topics["topic_sizes"].items()}
    model.custom_labels_ = topics["custom_labels"]
    model.topic_aspects_ = {
        a: {int(t): v for t, v in values.items()} for a, values in (topics.get("topic_aspects") or {}).items()
    }
    model.topic_mapper_ = TopicMapper([0])
    model.topic_mapper_.mappings_ = topics["topic_mapper"]
    if ctfidf is not None and ctfidf_config is not None:
        model.c_tf_idf_ = sp.csr_matrix(
            (ctfidf["data"], ctfidf["indices"], ctfidf["indptr"]), shape=tuple(ctfidf["shape"])
        )
        params = dict(ctfidf_config["vectorizer_model"]["params"])
        params["ngram_range"] = tuple(params["ngram_range"])
        model.vectorizer_model = CountVectorizer(**params)
        model.vectorizer_model.vocabulary_ = ctfidf_config["vectorizer_model"]["vocab"]
        model.ctfidf_model.reduce_frequent_words = ctfidf_config["ctfidf_model"]["reduce_frequent_words"]
        model.ctfidf_model.bm25_weighting = ctfidf_config["ctfidf_model"]["bm25_weighting"]
        idf = ctfidf["diag"]
        model.ctfidf_model._idf_diag = sp.diags(idf, offsets=0, shape=(len(idf), len(idf)), format="csr")


def _minimal_bertopic_state(model: StableTopicModel) -> None:
    """BERTopic's state for a model without BERTopic files: representations from the stored keywords."""
    from bertopic._bertopic import TopicMapper

    k = len(model.topic_ids_)
    words = [model.keywords_.get(int(t), []) for t in model.topic_ids_]
    model.topic_representations_ = {
        -1: [("", 1e-05)],
        **{j: [(w, 0.0) for w in words[j]] or [("", 1e-05)] for j in range(k)},
    }
    sizes = {j: int(model.sizes_.get(int(t), 0)) for j, t in enumerate(model.topic_ids_)}
    model.topic_sizes_ = {-1: 0, **sizes}  # -1 present: BERTopic's outlier class exists
    model.topic_mapper_ = TopicMapper(list(range(k)))
    model.topics_ = []  # fitted, on documents not kept
    model.topic_aspects_ = {}


def _parts_state(
    model: StableTopicModel,
    means: np.ndarray,
    order: list[str],
    overall: np.ndarray,
    rotation: np.ndarray | None,
    centroids: np.ndarray,
) -> None:
    reducer, clusters = model.umap_model, model.hdbscan_model
    reducer.language_means_ = {k: np.asarray(means[i], dtype=np.float32) for i, k in enumerate(order)}
    reducer.overall_mean_ = np.asarray(overall, dtype=np.float32)
    reducer.rotation_ = None if rotation is None else np.asarray(rotation, dtype=np.float32)
    clusters.centroids_ = np.asarray(centroids, dtype=np.float32).reshape(-1, len(reducer.overall_mean_))


def load_stable(folder: Path) -> StableTopicModel:
    """Read a version folder of ``topics.stable.v1`` (this format or the earlier one)."""
    if not (folder / META).exists():
        legacy = folder / "topics.json"
        if not legacy.exists():
            raise FeedbackError(f"{folder} holds no topic model (no {META} or topics.json)")
        meta = json.loads(legacy.read_text(encoding="utf-8"))
        return from_legacy_meta(meta, np.load(folder / "centroids.npy"))
    from pipeline.topics.stable import StableTopicModel

    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    if int(meta.get("format", 0)) > FORMAT:
        raise FeedbackError(
            f"{folder}: topic model format {meta['format']} is newer than this release's ({FORMAT})"
        )
    model = StableTopicModel(**meta["params"])
    rotation = np.load(folder / "rotation.npy") if (folder / "rotation.npy").exists() else None
    _parts_state(
        model,
        np.load(folder / "language_means.npy"),
        meta["language_order"],
        np.load(folder / "overall_mean.npy"),
        rotation,
        np.load(folder / "centroids.npy"),
    )
    _pipeline_state(model, meta)
    if (folder / "bertopic" / "topics.json").exists():
        _bertopic_state(model, folder / "bertopic")
    else:
        _minimal_bertopic_state(model)
    return model


def _unb64(text: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(-1, dim).astype(np.float32)


def from_legacy_meta(meta: dict, centroids: np.ndarray) -> StableTopicModel:
    """A model from the files of an earlier release (``topics.json`` + centroids in the centred space)."""
    from pipeline.topics.stable import StableTopicModel

    model = StableTopicModel(**{k: v for k, v in meta["params"].items() if k in _PARAMS})
    dim = int(meta["dim"])
    order = meta.get("language_order", [])
    means = _unb64(meta["language_means"], dim) if order else np.zeros((0, dim), np.float32)
    _parts_state(
        model,
        means,
        order,
        _unb64(meta["overall_mean"], dim)[0],
        None,  # centroids of earlier releases live in the centred space itself
        np.asarray(centroids, dtype=np.float32).reshape(len(meta["topic_ids"]), dim),
    )
    _pipeline_state(model, meta)
    _minimal_bertopic_state(model)
    return model
