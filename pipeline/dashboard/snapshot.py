"""The read-only snapshot a run publishes for the dashboard, and how the dashboard opens what it reads.

Why a snapshot: a DuckDB file opened for writing is locked against every other process, readers
included, and a first run can take hours. If the dashboard opened the warehouse, either the run could
not start (the dashboard holds the file) or the dashboard would stop working for the length of a run.
So each run, at its end, copies the tables the dashboard reads into ``<warehouse>.dashboard.duckdb``:
written to a temporary file and renamed over the old one (atomic on POSIX), so the dashboard reads either
the old or the new snapshot, never half of one. A dashboard that still has the old file open keeps
reading it until it notices the new one (:func:`snapshot_key` changes) and reopens.

The copy adds an integer key of each answer, :data:`pipeline.analysis.filters.ROW_KEY`, to the enriched,
tags and tag-labels tables: the analysis joins answers to their themes on it instead of the text
``response_id`` (5x faster at 1M answers; it kept the Themes page over 1 s, bench/README.md "Dashboard").

What is copied: every table except the source table (raw, unredacted answers), the quarantine, the
embedding cache, model files and pointers, the run lock and the erasure log. The snapshot therefore
holds only redacted text.

PostgreSQL (and any SQL database) needs none of this: readers never block writers there, so the
dashboard reads the warehouse itself (:func:`open_for_dashboard`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, FeedbackError

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".dashboard.duckdb"
DASHBOARD_BUFFER_LIMIT = os.environ.get("FEEDBACK_DASHBOARD_MEMORY_LIMIT", "512MB")
"""DuckDB's buffer-pool cap for the snapshot the dashboard reads (FEEDBACK_DASHBOARD_MEMORY_LIMIT)."""


def duckdb_file(target: str) -> Path | None:
    """The file a DuckDB warehouse target names; None for ``:memory:`` and for other databases."""
    text = str(target).strip()
    if "://" not in text:
        return None if text == ":memory:" else Path(text).expanduser().resolve()
    scheme, rest = text.split("://", 1)
    if scheme.lower() != "duckdb":
        return None
    path = rest[1:] if rest.startswith("/") else rest  # duckdb:///relative, duckdb:////absolute
    return None if path in ("", ":memory:") else Path(path).expanduser().resolve()


def snapshot_path(warehouse_file: Path) -> Path:
    """``/x/feedback.duckdb`` -> ``/x/feedback.dashboard.duckdb``."""
    return warehouse_file.with_name(warehouse_file.stem + SNAPSHOT_SUFFIX)


def excluded_tables(wh: Warehouse, config: EnrichmentConfig) -> set[str]:
    """Tables never copied into the snapshot (raw text, big binary state, run-control tables)."""
    t = config.tables
    return {
        t.source,
        t.quarantine,
        t.embedding_cache,
        wh.vector_table,
        t.model_files,
        t.model_pointers,
        t.lock,
        t.erasures,
    }


def publish_snapshot(wh: Warehouse, config: EnrichmentConfig) -> Path | None:
    """Copy the dashboard's tables of a DuckDB warehouse into its snapshot file, atomically.

    Called by the run at its end, on the run's own connection (the only one that may touch the file).

    Returns:
        The snapshot's path; None for warehouses that need none (PostgreSQL, in-memory DuckDB).
    """
    path = duckdb_file(wh.url) if wh.dialect == "duckdb" else None
    if path is None:
        return None
    target = snapshot_path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    skip = excluded_tables(wh, config)
    tables = [name for name in wh.tables() if name not in skip]
    selects = copy_selects(wh, config, tables, "feedback_dashboard_snapshot")
    quoted = str(tmp).replace("'", "''")
    # The run's connection is the only one allowed on the file: attach the new file to it and copy.
    with wh._connection() as con:  # noqa: SLF001 (DuckDB-only: ATTACH needs the raw connection)
        con.execute(f"ATTACH '{quoted}' AS feedback_dashboard_snapshot")
        try:
            for name, select in selects:
                con.execute(f'CREATE TABLE feedback_dashboard_snapshot."{name}" AS {select}')
        finally:
            con.execute("DETACH feedback_dashboard_snapshot")
    os.replace(tmp, target)
    log.info("dashboard snapshot: %d tables -> %s", len(tables), target)
    return target


def copy_selects(
    wh: Warehouse, config: EnrichmentConfig, tables: list[str], into: str
) -> list[tuple[str, str]]:
    """(table, SELECT that fills its copy) in the order to run them: the enriched table first, with
    :data:`~pipeline.analysis.filters.ROW_KEY` numbered, then the tags and tag labels with the key of their
    answer (NULL for an answer that is not enriched). Without a tags table, or when the enriched table
    already has a column of that name, every table is copied as it is (the analysis then joins on
    ``response_id``)."""
    from pipeline.analysis.filters import ROW_KEY

    t = config.tables
    q = wh._qualified  # noqa: SLF001 (the copy runs on the run's own DuckDB connection)
    plain = [(name, f"SELECT * FROM {q(name)}") for name in tables]
    columns = wh.columns(t.enriched) if t.enriched in tables else []
    keyed = t.tags in tables and "response_id" in columns and ROW_KEY not in columns
    if not keyed:
        return plain
    first = (t.enriched, f"SELECT *, CAST(row_number() OVER () AS BIGINT) AS {ROW_KEY} FROM {q(t.enriched)}")
    keys = f'{into}."{t.enriched}"'
    joined = {
        t.tags: f"SELECT x.*, k.{ROW_KEY} FROM {q(t.tags)} x LEFT JOIN {keys} k ON k.response_id = x.response_id",
        t.tag_labels: f"SELECT x.*, k.{ROW_KEY} FROM {q(t.tag_labels)} x LEFT JOIN {keys} k ON k.response_id = x.id",
    }
    return [first, *[(name, joined.get(name, select)) for name, select in plain if name != t.enriched]]


def snapshot_key(warehouse: str) -> tuple:
    """A value that changes whenever a new snapshot is published (so a reader knows to reopen)."""
    path = duckdb_file(warehouse)
    if path is None:
        return (warehouse,)
    try:
        stat = snapshot_path(path).stat()
    except FileNotFoundError:
        return (str(path), None)
    return (str(path), stat.st_ino, stat.st_mtime_ns)


def open_for_dashboard(warehouse: str) -> Warehouse:
    """Open what the dashboard reads: the snapshot of a DuckDB warehouse (read-only), else the warehouse.

    Raises:
        ConfigError: When a DuckDB warehouse has no snapshot yet (no run since this feature): says to run
            ``feedback enrich`` (or start ``feedback dashboard``, which publishes one when it can).
    """
    path = duckdb_file(warehouse)
    if path is None:
        from pipeline.warehouse import open_warehouse

        return open_warehouse(warehouse)
    snap = snapshot_path(path)
    if not snap.is_file():
        raise ConfigError(
            f"No dashboard snapshot {snap} for the DuckDB warehouse {path}. Each run publishes one at its "
            "end: run `feedback enrich` (or start `feedback dashboard` while no run holds the warehouse)."
        )
    from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    # the dashboard's queries join the theme rows to the answers: a larger cache than a run's (the
    # dashboard process stays under 1 GB at 1M answers, bench/README.md)
    return DuckDBWarehouse(snap, read_only=True, buffer_limit=DASHBOARD_BUFFER_LIMIT)


def ensure_snapshot(config: EnrichmentConfig) -> Path | None:
    """Publish a snapshot at dashboard start when there is none or the warehouse changed since.

    A running run holds the warehouse: then an existing snapshot is used as it is (the run publishes a
    new one at its end), and without one this raises with what to do.
    """
    path = duckdb_file(config.warehouse)
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(
            f"No DuckDB warehouse at {path}. Pass --warehouse PATH|URL, or build one first with "
            "`feedback demo` or `feedback enrich --source FILE`."
        )
    snap = snapshot_path(path)
    if snap.is_file() and snap.stat().st_mtime_ns >= path.stat().st_mtime_ns:
        return snap
    from pipeline.warehouse import open_warehouse

    try:
        with open_warehouse(str(path), config=config) as wh:
            return publish_snapshot(wh, config)
    except FeedbackError as exc:
        if snap.is_file():
            log.warning("warehouse busy (%s); the dashboard reads the last snapshot %s", exc, snap)
            return snap
        raise FeedbackError(
            f"{path} is held by a running run and has no dashboard snapshot yet; the run publishes one at "
            "its end. Start the dashboard again then."
        ) from exc
