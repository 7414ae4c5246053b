"""Topic models as model-store versions: the promoted one for a run, and a gated promotion of each refit.

A refit is a candidate like a trained tagger: it is measured next to the promoted model on the same
window and promoted only when no gate metric is worse by more than ``topics.max_drop`` points:

* ``outlier_share``: answers of the window that no topic takes (lower is better);
* ``stability_ari``: adjusted Rand index between the model's assignment of the window and that of an
  independent fit on an 80% resample of it (how much of the model's structure the data supports);
* ``nmi_tags``: normalised mutual information with the answers' first tags, where tags exist.

A refused refit stays in the store (``feedback topics list`` shows it; ``feedback topics promote
--force`` can still promote it) and the promoted model keeps serving.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model_gates import PromotionDecision
from pipeline.model_store import ModelStore, open_store, read_manifest
from pipeline.topics import BERTopicModel, assign_topics, build_topics, fit_topics

log = logging.getLogger(__name__)

RESAMPLE_SHARE = 0.8


def topics_store(config: Any, wh: Any) -> ModelStore:
    """The topics family's store (in the warehouse unless ``model_store.in_warehouse`` says otherwise)."""
    return open_store(config, "topics", wh)


def load_promoted_topics(
    config: Any, wh: Any, embedder_id: str, *, lazy: bool = False
) -> BERTopicModel | LazyTopics | None:
    """The promoted topic model when it was fitted on this embedder's vectors (None otherwise).

    ``lazy=True`` returns a :class:`LazyTopics` that reads the model files only when first used.
    """
    path = topics_store(config, wh).promoted_path()
    if path is None:
        return None
    manifest = read_manifest(path, "topics")
    fitted_on = (manifest.get("encoder") or {}).get("model_id")
    if fitted_on != embedder_id:
        log.info(
            "topics: the promoted model was fitted on %r vectors, the run's are %r", fitted_on, embedder_id
        )
        return None
    if lazy:
        return LazyTopics(Path(path), str(manifest["version"]))
    return BERTopicModel.load(path)


class LazyTopics:
    """The promoted topic model, read from its folder on first use.

    Loading a BERTopic model imports BERTopic and its stack (sentence-transformers, torch: about 7 s): a
    run with no new rows, which assigns no topic, should not pay for that. ``version`` is known from the
    manifest without loading; any other attribute loads the model and is read from it.
    """

    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self.version = version
        self._model: BERTopicModel | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model has been read."""
        return self._model is not None

    def model(self) -> BERTopicModel:
        """The model (read now if it was not yet)."""
        if self._model is None:
            model = BERTopicModel.load(self.path)
            if model.version != self.version:
                raise ValueError(
                    f"The topic model in {self.path} is version {model.version}, its manifest says "
                    f"{self.version}: the model store is damaged; promote a version again."
                )
            self._model = model
        return self._model

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("path", "version", "_model"):
            raise AttributeError(name)
        return getattr(self.model(), name)


def last_fit_at(config: Any, wh: Any) -> datetime | None:
    """When the latest topic model was fitted, promoted or not (a refused refit also waits its turn)."""
    stamps = [str(m.get("created_at")) for m in topics_store(config, wh).versions() if m.get("created_at")]
    return datetime.fromisoformat(max(stamps)).replace(tzinfo=None) if stamps else None


def nmi_with_tags(labels: np.ndarray, tags: list[Any] | None) -> float | None:
    """NMI of topic ids with each answer's first tag ("none" for an answer without one), over the
    answers whose tags are known; None when no answer has tags."""
    if tags is None:
        return None
    from sklearn.metrics import normalized_mutual_info_score

    known = [i for i, t in enumerate(tags) if isinstance(t, list | tuple | np.ndarray)]
    if not known or not any(len(tags[i]) for i in known):
        return None
    first = [str(tags[i][0]) if len(tags[i]) else "none" for i in known]
    return float(normalized_mutual_info_score(first, np.asarray(labels)[known]))


def resample_labels(
    config: Any, texts: list[str], emb: np.ndarray, languages: list[str] | None, seed: int = 0
) -> np.ndarray:
    """The window's assignment by an independent fit (no warm start) on an 80% resample of it."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(texts), max(1, int(RESAMPLE_SHARE * len(texts))), replace=False))
    options = {"languages": config.languages, **config.topics.options}
    model = fit_topics(
        build_topics(config.topics.name, **options),
        [texts[i] for i in rows],
        emb[rows],
        [languages[i] for i in rows] if languages is not None else None,
    )
    return assign_topics(model, emb, languages)


def gate_metrics(
    model: Any,
    emb: np.ndarray,
    languages: list[str] | None,
    tags: list[Any] | None,
    reference: np.ndarray | None = None,
) -> dict[str, Any]:
    """A topic model's gate metrics on one window (``reference``: :func:`resample_labels`)."""
    from sklearn.metrics import adjusted_rand_score

    labels = assign_topics(model, emb, languages)
    out: dict[str, Any] = {
        "n_topics": int(len(model.topic_ids_)),
        "outlier_share": float((labels == -1).mean()) if len(labels) else 0.0,
        "nmi_tags": nmi_with_tags(labels, tags),
    }
    if reference is not None:
        out["stability_ari"] = float(adjusted_rand_score(reference, labels))
    return out


def promote_fit(
    config: Any,
    wh: Any,
    model: BERTopicModel,
    previous: BERTopicModel | None,
    texts: list[str],
    emb: np.ndarray,
    languages: list[str] | None,
    tags: list[Any] | None,
    encoder: dict[str, Any],
    window_start: pd.Timestamp | None = None,
) -> PromotionDecision:
    """Store a fit as a version and promote it when the gate allows (the first fit always passes)."""
    store = topics_store(config, wh)
    current_metrics = None
    if previous is not None and len(texts):
        reference = resample_labels(config, texts, emb, languages)
        candidate_metrics = gate_metrics(model, emb, languages, tags, reference)
        current_metrics = gate_metrics(previous, emb, languages, tags, reference)
    else:
        candidate_metrics = gate_metrics(model, emb, languages, tags)
    with tempfile.TemporaryDirectory(prefix="topics-") as tmp:
        folder = model.save_version(
            Path(tmp) / model.version,
            encoder,
            candidate_metrics,
            {"rows": len(texts), "window_start": None if window_start is None else str(window_start)},
        )
        store.add(folder)  # kept even when refused: listed, and promotable with --force
        decision = store.promote(
            folder,
            candidate_metrics,
            current_metrics,
            max_drop=config.topics.max_drop,
            evaluation={
                "window_rows": len(texts),
                "window_start": None if window_start is None else str(window_start),
            },
        )
    if not decision.promoted:
        log.warning("topics: refit %s not promoted: %s", model.version, decision.reason)
    return decision
