"""The steps of the weekly tagger retraining, as plain functions (``flows/retrain_tagger.py`` wires them):
load labels, split off an evaluation set, train, gate and promote, re-tag the stored answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import EnrichmentConfig
from pipeline.embed import CachedEmbedder, Embedder
from pipeline.embed.response import answer_embedder
from pipeline.model_store import MANIFEST, FolderStore, ModelStore, open_store
from pipeline.prepare import prepare_config_of
from pipeline.tagging.data import (
    LabelledData,
    embed_labelled,
    labelled_from_frame,
    read_label_table,
    read_labelled_files,
)

log = logging.getLogger(__name__)

MIN_LABELS = 20
"""Fewer labelled rows than this and the retraining stops (nothing to learn or to gate on)."""


def tagger_store(config: EnrichmentConfig, wh: Any = None, registry: str | Path | None = None) -> ModelStore:
    """The tagger store a retraining promotes into: the ``registry`` folder when given, else
    ``tagger.model_dir`` when it is a registry (not a version folder), else the config's model store."""
    if registry is not None:
        return FolderStore(registry, "tagger")
    model_dir = config.tagger.model_dir
    if model_dir is not None and not (Path(model_dir) / MANIFEST).exists():
        return FolderStore(model_dir, "tagger")
    return open_store(config, "tagger", wh)


def load_training_labels(
    wh: Any, config: EnrichmentConfig, embedder: Embedder, files: list[str] | None = None
) -> LabelledData:
    """Labels from the warehouse table ``tag_labels`` plus any labelled files, with answer vectors made
    as the nightly run makes them (see :class:`pipeline.embed.response.AnswerEmbedder`)."""
    parts: list[LabelledData] = []
    frame = read_label_table(wh, config.tables.tag_labels, texts_table=config.tables.enriched)
    answers = answer_embedder(CachedEmbedder(getattr(embedder, "base", embedder), wh), config)
    if len(frame):
        data = labelled_from_frame(frame, "warehouse:tag_labels", prepare_config_of(config))
        parts.append(embed_labelled(data, answers))
    if files:
        parts.append(read_labelled_files(files, answers, prepare=prepare_config_of(config)))
    if not parts:
        return LabelledData(frame, np.zeros((0, embedder.dim), np.float32), [], embedder.model_id)
    data = LabelledData.concat(parts)
    log.info("labels: %d rows from %s", len(data), data.sources)
    return data


def split_labels(
    data: LabelledData, eval_fraction: float, seed: int = 0
) -> tuple[LabelledData, LabelledData]:
    """A train/evaluation split, stratified on each row's rarest tag (and grouped when rows have groups)."""
    from pipeline.tagging.metrics import binarize
    from pipeline.tagging.trained import _folds

    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    names = list(data.tag_counts())
    y = binarize(data.tags, names)
    n_splits = max(2, round(1 / eval_fraction))
    fold, _ = _folds(y, data.groups, n_splits, seed)
    test = np.flatnonzero(fold == 0)
    train = np.flatnonzero(fold != 0)
    return data.subset(train), data.subset(test)
