"""The steps of the weekly tagger retraining, as plain functions (``flows/retrain_tagger.py`` wires them):
load labels, split off an evaluation set, train, gate and promote, re-tag the stored answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
    from pipeline.tagging.trained_parts import _folds

    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    names = list(data.tag_counts())
    y = binarize(data.tags, names)
    n_splits = max(2, round(1 / eval_fraction))
    fold, _ = _folds(y, data.groups, n_splits, seed)
    test = np.flatnonzero(fold == 0)
    train = np.flatnonzero(fold != 0)
    return data.subset(train), data.subset(test)


SELF_TRAIN_MAX_ROWS = 20_000
"""Stored answers a weekly self-training reads at most (a content-chosen sample of the window)."""


def self_train_window(
    wh: Any,
    config: EnrichmentConfig,
    embedder: Embedder,
    store: ModelStore,
    *,
    force: bool = False,
    max_drop: float = 1.0,
) -> dict[str, Any]:
    """No labels yet: self-train a tagger on the stored answers of the topic window (their vectors come
    from the cache) and promote it through the label-free gate (:mod:`pipeline.tagging.selftrain`).

    Labels take over once they exist: a promoted version trained on labels is never replaced by a
    self-trained one (the caller then trains on the labels instead). Recorded in the manifest as mode
    ``self-trained``.

    Returns:
        A summary: status (promoted / refused / skipped), rows, version and the decision.
    """
    from pipeline.model_store import read_manifest
    from pipeline.tagging.lifecycle import encoder_spec, save_version
    from pipeline.tagging.selftrain import train_without_labels
    from pipeline.tagging.taxonomy import load_taxonomy
    from pipeline.topics import content_sample

    current = store.promoted_path()
    current_mode = read_manifest(current)["mode"] if current is not None else None
    if current_mode not in (None, "self-trained", "zero-shot"):
        return {"status": "skipped", "reason": f"a {current_mode} version trained on labels is promoted"}
    t = config.tables
    if not wh.table_exists(t.enriched):
        return {"status": "skipped", "reason": "no stored answers"}
    end = wh.max_value(t.enriched, "submitted_at")
    start = None if end is None else pd.Timestamp(end) - pd.Timedelta(days=config.topics.window_days)
    rows = wh.read_range(
        t.enriched, "submitted_at", start, None, ["response_id", "text_redacted", "language", "is_non_answer"]
    )
    rows = rows[~rows["is_non_answer"].astype(bool)].drop_duplicates("text_redacted").reset_index(drop=True)
    if len(rows) > SELF_TRAIN_MAX_ROWS:
        rows = rows.iloc[
            np.sort(content_sample(rows["text_redacted"].astype(str).tolist(), SELF_TRAIN_MAX_ROWS))
        ]
    frame = pd.DataFrame(
        {
            "id": rows["response_id"].astype(str).to_numpy(),
            "text": rows["text_redacted"].astype(str).to_numpy(),
            "tags": [None] * len(rows),
            "lang": rows["language"].to_numpy(),
            "group": None,
        }
    )
    answers = answer_embedder(CachedEmbedder(getattr(embedder, "base", embedder), wh), config)
    window = embed_labelled(LabelledData(frame, sources=["warehouse:window"]), answers)
    model, info = train_without_labels(window, answers, load_taxonomy(config.tagger.taxonomy))
    if info.mode != "self-trained":
        gate = (getattr(model, "self_training_", None) or {}).get("gate") or {}
        reason = gate.get("reason", "too few answers in the window")
        return {"status": "skipped", "mode": info.mode, "rows": len(rows), "reason": reason}
    spec = encoder_spec(config.embedder.name, config.embedder.options, answers)
    folder = save_version(model, Path(config.state_dir) / "candidates" / model.version, info, spec)
    store.add(folder)
    candidate = read_manifest(folder)["metrics"]
    previous = read_manifest(current)["metrics"] if current_mode == "self-trained" else None
    decision = store.promote(
        folder,
        candidate,
        previous,
        force=force,
        max_drop=max_drop,
        evaluation={"kind": "label-free (self-training gate)", "window_rows": len(rows)},
        gate_family="tagger-self-trained",
    )
    return {
        "status": "promoted" if decision.promoted else "refused",
        "mode": "self-trained",
        "rows": len(rows),
        "version": model.version,
        "decision": decision.as_dict(),
    }
