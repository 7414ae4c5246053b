"""Versioned upgrades of a warehouse written by an earlier release.

The warehouse records its schema version in the ``warehouse_meta`` table (key ``schema_version``). A
warehouse with pipeline tables but no version is version 1 (the releases before versions were
recorded). :func:`upgrade` runs the missing migrations in order, each in one transaction with the new
version, so a kill during an upgrade leaves the old version whole; every run calls it under the run
lock. A warehouse written by a newer release is refused (exit 2), never guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.errors import FeedbackError
from pipeline.warehouse.base import TEXT, Warehouse
from pipeline.warehouse.tables import TableSpec, add_column_ddl, build_table, declare

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
VERSION_KEY = "schema_version"
COLUMN_NAMES_KEY = "source_column_names"  # {export column name: warehouse column name}, set by loads


def _add_column(wh: Warehouse, table: str, column: str, logical: str) -> bool:
    """ALTER TABLE ... ADD COLUMN when the table exists and lacks it; returns whether it was added."""
    if not wh.table_exists(table) or column in wh.columns(table):
        return False
    from sqlalchemy.dialects import postgresql, sqlite

    # DuckDB reads PostgreSQL's DDL; the SQL backends compile for their own dialect.
    dialect = sqlite.dialect() if wh.dialect == "sqlite" else postgresql.dialect()
    target = build_table(table, {column: logical}, None, wh.dialect, wh.schema)
    wh._execute(add_column_ddl(target, column, dialect))
    return True


def _v2_content_hashes(wh: Warehouse, config: EnrichmentConfig) -> None:
    """Version 2: rows are pending by content (``source_hash`` on enriched and quarantined rows).

    Rows stored by version 1 have no hash, so the next run re-checks each of them once: their vectors
    come from the embedding cache, and rows that version 1 left incomplete (an edited comment never
    re-enriched, a batch cut by a kill) are completed.
    """
    t = config.tables
    for table in (t.enriched, t.quarantine):
        if _add_column(wh, table, "source_hash", TEXT):
            log.info("upgrade: %s rows of %s will be re-checked by the next run", wh.count(table), table)


def _v3_topic_models_in_the_store(wh: Warehouse, config: EnrichmentConfig) -> None:
    """Version 3: topic models are model-store versions (:mod:`pipeline.model_store`).

    Every row of the old ``topic_models`` table becomes a topics version (same version id, so rows and
    ``topic_history`` keep pointing at it), the latest fit is promoted, and the old table is dropped.
    """
    import tempfile
    from pathlib import Path

    from pipeline.model_store import open_store
    from pipeline.topics import BERTopicModel

    old = "topic_models"
    if not wh.table_exists(old):
        return
    store = open_store(config, "topics", wh)
    rows = wh.read(old).sort_values("fitted_at")
    with tempfile.TemporaryDirectory(prefix="upgrade-topics-") as tmp:
        folder = None
        for record in rows.to_dict("records"):
            model = BERTopicModel.from_record(record)
            folder = model.save_version(
                Path(tmp) / model.version,
                {"model_id": str(record["embedder_id"]), "response_vector": config.response_vector},
                {"outlier_share": float(model.fit_outlier_share_), "n_topics": int(len(model.topic_ids_))},
                {"migrated_from": old},
            )
            store.add(folder)
        if folder is not None:
            store.promote(folder, {}, None, evaluation={"kind": f"upgraded from the {old} table"})
    wh._execute(f"DROP TABLE {wh._qualified(old)}")
    log.info("upgrade: %d topic model(s) moved from %s into %s", len(rows), old, store.describe())


def _v4_declared_tables(wh: Warehouse, config: EnrichmentConfig) -> None:
    """Version 4: every table the pipeline writes has its declared columns (:mod:`pipeline.warehouse.tables`).

    A table of an earlier release whose columns or types differ from its declaration is rebuilt from
    it, rows kept: segment columns the config does not name move into ``segments_extra``. The source
    table is left as it is (it may be your own table; the pipeline only reads it). Columns a declared
    table without ``segments_extra`` no longer has are dropped, with a warning naming them.
    """
    declared = declare(config)
    wh.use_tables(declared)
    for spec in declared.tables.values():
        if spec.name == config.tables.source or _matches(wh._column_types(spec.name), spec):
            continue
        rows = wh.read(spec.name)
        if not spec.extras and (gone := [c for c in rows.columns if c not in spec.types]):
            log.warning("upgrade: columns %s of %s are not declared any more: dropped", gone, spec.name)
            rows = rows.drop(columns=gone)
        wh._execute(f"DROP TABLE {wh._qualified(spec.name)}")
        wh.upsert(spec.name, rows, key=spec.key)
        log.info("upgrade: %s rebuilt from its declaration (%d rows)", spec.name, len(rows))


def _v5_analysis_tables(wh: Warehouse, config: EnrichmentConfig) -> None:
    """Version 5: the close-the-loop queue (``followups``) and sentiment corrections (``sentiment_labels``).

    Both are created empty from their declarations, so that readers (report, dashboard, ``feedback
    status``) can always query them.
    """
    from pipeline.warehouse.tables import declared_columns

    declared = declare(config)
    for table in (config.tables.followups, config.tables.sentiment_labels):
        if wh.table_exists(table):
            continue
        spec = declared.tables[table]
        field_name = "followups" if table == config.tables.followups else "sentiment_labels"
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in declared_columns(field_name)})
        wh.upsert(table, empty, key=spec.key)
        log.info("upgrade: created %s", table)


def _matches(found: dict[str, str], spec: TableSpec) -> bool:
    """Whether a table exists with exactly the declared columns and types (absent tables match)."""
    return not found or found == spec.types


MIGRATIONS: dict[int, Callable[[Warehouse, EnrichmentConfig], None]] = {
    2: _v2_content_hashes,
    3: _v3_topic_models_in_the_store,
    4: _v4_declared_tables,
    5: _v5_analysis_tables,
}


def schema_version(wh: Warehouse, config: EnrichmentConfig) -> int | None:
    """The warehouse's recorded schema version; 1 for an unversioned one with tables; None when empty."""
    meta = config.tables.meta
    if wh.table_exists(meta):
        rows = wh.read(meta, where={"key": [VERSION_KEY]})
        if len(rows):
            return int(rows["value"].iloc[0])
    t = config.tables
    if any(wh.table_exists(x) for x in (t.enriched, t.quarantine, t.runs)):
        return 1
    return None


def read_meta(wh: Warehouse, config: EnrichmentConfig, key: str) -> str | None:
    """A value of the ``warehouse_meta`` table, or None."""
    if not wh.table_exists(config.tables.meta):
        return None
    rows = wh.read(config.tables.meta, where={"key": [key]})
    return None if rows.empty else str(rows["value"].iloc[0])


def write_meta(wh: Warehouse, config: EnrichmentConfig, key: str, value: str) -> None:
    """Set a value of the ``warehouse_meta`` table."""
    frame = pd.DataFrame(
        {"key": [key], "value": [value], "updated_at": [pd.Timestamp(utcnow()).as_unit("us")]}
    )
    wh.upsert(config.tables.meta, frame, key=["key"])


def _record(wh: Warehouse, config: EnrichmentConfig, version: int) -> None:
    write_meta(wh, config, VERSION_KEY, str(version))


def upgrade(wh: Warehouse, config: EnrichmentConfig) -> int:
    """Bring the warehouse to :data:`SCHEMA_VERSION` (call it holding the run lock).

    Returns:
        The version it had before (``SCHEMA_VERSION`` for a new warehouse).

    Raises:
        FeedbackError: For a warehouse written by a newer release.
    """
    wh.use_tables(declare(config))
    found = schema_version(wh, config)
    if found is None:
        _record(wh, config, SCHEMA_VERSION)
        return SCHEMA_VERSION
    if found > SCHEMA_VERSION:
        raise FeedbackError(
            f"{wh.describe()} has schema version {found}, written by a newer release of feedback-pipeline "
            f"(this one knows versions up to {SCHEMA_VERSION}). Upgrade this installation "
            "(pip install -U feedback-pipeline, or git pull) before running it against this warehouse."
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with wh.transaction():
            MIGRATIONS[version](wh, config)
            _record(wh, config, version)
        log.info("upgrade: %s is now at schema version %d", wh.describe(), version)
    return found
