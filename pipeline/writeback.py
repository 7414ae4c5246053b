"""Write back: a batch's enriched rows, tags, sentences and quarantine records (one transaction), the
topics registry, alerts, and the removal of rows deleted from the source."""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.enrich import EnrichedBatch
from pipeline.faults import fault_point
from pipeline.ingest.pending import removed_ids
from pipeline.schema import TABLE_KEYS
from pipeline.topics import (
    BERTopicModel,
    NoTopics,
    is_stable,
)
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def write_batch(
    wh: Warehouse,
    config: EnrichmentConfig,
    batch: EnrichedBatch | None,
    quarantined: pd.DataFrame | None,
    run_id: str,
) -> None:
    """Write one batch in ONE transaction: each response ends enriched (its row, tags and sentences)
    or quarantined, never half of it, and never both.

    A response's earlier tags and sentences are replaced, not appended; an enriched response that is
    now quarantined leaves the enriched tables, and a quarantined one that is now enriched leaves the
    quarantine. A process killed before the commit leaves the warehouse as it was, so the rows stay
    pending and the next run does them again.
    """
    t = config.tables
    enriched_ids = batch.enriched["response_id"].astype(str).tolist() if batch is not None else []
    q = quarantined if quarantined is not None and len(quarantined) else None
    quarantined_ids = q["response_id"].astype(str).tolist() if q is not None else []
    ids = enriched_ids + quarantined_ids
    if not ids:
        return
    with wh.transaction():
        for table in (t.tags, t.sentences):
            wh.delete(table, {"response_id": ids})
        if quarantined_ids:
            wh.delete(t.enriched, {"response_id": quarantined_ids})
            rows = q.assign(run_id=run_id, quarantined_at=pd.Timestamp(utcnow()).as_unit("us"))
            wh.upsert(t.quarantine, rows, key=TABLE_KEYS["quarantine"])
        if batch is not None and enriched_ids:
            wh.delete(t.quarantine, {"response_id": enriched_ids})
            wh.upsert(t.enriched, batch.enriched, key=TABLE_KEYS["feedback_enriched"])
            if len(batch.tags):
                wh.upsert(t.tags, batch.tags, key=TABLE_KEYS["feedback_tags"])
            if len(batch.sentences):
                wh.upsert(t.sentences, batch.sentences, key=TABLE_KEYS["feedback_sentences"])
    fault_point("write_batch")


def remove_deleted(wh: Warehouse, config: EnrichmentConfig) -> int:
    """Erase what the pipeline keeps of rows deleted from the source, and of answers older than
    ``retention_days`` (:mod:`pipeline.erasure`: every table, quotes and cache, one transaction), so that
    source = enriched + quarantined keeps holding. Returns how many responses were removed."""
    from pipeline.erasure import expired_ids, forget_ids

    removed = 0
    deleted = removed_ids(wh, config)
    if deleted:
        forget_ids(wh, config, deleted, reason="deleted_from_source", who="pipeline", delete_source=False)
        log.info("%d responses deleted from the source: erased from the pipeline's tables", len(deleted))
        removed += len(deleted)
    expired = expired_ids(wh, config)
    if expired:
        forget_ids(wh, config, expired, reason="retention", who="pipeline")
        log.info("%d responses older than retention_days=%s erased", len(expired), config.retention_days)
        removed += len(expired)
    return removed


def topic_spans(wh: Warehouse, config: EnrichmentConfig) -> pd.DataFrame:
    """First and last ``submitted_at`` of each topic among the stored answers (an aggregate in SQL)."""
    t = config.tables.enriched
    if not wh.table_exists(t) or not {"topic_id", "submitted_at"} <= set(wh.columns(t)):
        return pd.DataFrame(columns=["topic_id", "submitted_at"])
    q = wh._quote
    rows = wh._query(
        f"SELECT {q('topic_id')} AS topic_id, MIN({q('submitted_at')}) AS first_at, "
        f"MAX({q('submitted_at')}) AS last_at FROM {wh._qualified(t)} "
        f"WHERE {q('topic_id')} >= 0 GROUP BY {q('topic_id')}",
        None,
        {"topic_id": "bigint", "first_at": "timestamp", "last_at": "timestamp"},
    )
    return pd.DataFrame(
        {
            "topic_id": pd.concat([rows["topic_id"], rows["topic_id"]], ignore_index=True),
            "submitted_at": pd.concat([rows["first_at"], rows["last_at"]], ignore_index=True),
        }
    )


def write_topics(
    wh: Warehouse,
    config: EnrichmentConfig,
    topics: BERTopicModel | NoTopics,
    seen: pd.DataFrame | None = None,
) -> None:
    """Upsert the topic registry: label, keywords, quotes, suggested tag, size, first/last seen, version.

    Topics of the stored registry that the current ``topics.stable.v1`` model no longer has are kept,
    with status ``retired`` (their ids are never reused). ``seen`` (topic_id, submitted_at) gives the
    first/last seen times; None reads them from the stored answers (:func:`topic_spans`), which makes
    the write a function of what is stored: a rerun after a kill writes the same registry.
    """
    table = topics.topic_table()
    if table.empty:
        return
    if seen is None:
        seen = topic_spans(wh, config)
    t = config.tables
    prior = wh.read(t.topics) if wh.table_exists(t.topics) else pd.DataFrame(columns=["topic_id"])
    by_id = prior.set_index("topic_id") if len(prior) else None

    def prior_value(topic_id: int, column: str) -> object:
        if by_id is None or column not in by_id.columns or topic_id not in by_id.index:
            return None
        value = by_id.at[topic_id, column]
        return (
            None if value is None or (not isinstance(value, list | np.ndarray) and pd.isna(value)) else value
        )

    span = seen[seen["topic_id"] >= 0].groupby("topic_id")["submitted_at"].agg(["min", "max"])
    table = table.assign(
        first_seen=[
            prior_value(i, "first_seen") if prior_value(i, "first_seen") is not None else span["min"].get(i)
            for i in table["topic_id"]
        ],
        last_seen=[
            span["max"].get(i) if span["max"].get(i) is not None else prior_value(i, "last_seen")
            for i in table["topic_id"]
        ],
        model_version=topics.version,
        status="active",
    )
    if is_stable(topics) and len(prior) and "status" in prior.columns:
        gone = prior[~prior["topic_id"].isin(table["topic_id"]) & prior["status"].ne("retired")]
        if len(gone):
            table = pd.concat([table, gone.assign(status="retired")], ignore_index=True)
    table["first_seen"] = pd.to_datetime(table["first_seen"]).astype("datetime64[us]")
    table["last_seen"] = pd.to_datetime(table["last_seen"]).astype("datetime64[us]")
    wh.upsert(t.topics, table, key=TABLE_KEYS["topics"])


def update_alerts(wh: Warehouse, config: EnrichmentConfig, now: datetime | None = None) -> int:
    """Emerging-theme alerts computed in the warehouse (:func:`pipeline.analysis.alerts.update_alerts`)."""
    from pipeline.analysis.alerts import update_alerts as update

    return update(wh, config, now)
