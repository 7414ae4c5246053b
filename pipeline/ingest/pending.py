"""Which source rows need work: decided by their content, never by a clock.

A source row is *pending* when neither the enriched table nor the quarantine holds a row with its
``response_id`` AND the hash of its current content (``source_hash``). So a new row, a late row (a
backfill, an offline kiosk, a delayed webhook: whatever its ``submitted_at``), an edited row (new
comment, score or segment), a quarantined row fixed in the source and a row whose earlier run was
killed before its batch committed are all pending; a row enriched or quarantined for its current
content is not. Model or taxonomy promotions do not change the hash, so they make nothing pending
(re-tagging is its own flow).

The hash covers every column of the source row, by name (column order does not matter, and a column
added later that is NULL does not change it). On DuckDB and PostgreSQL it is computed in the database
(``md5`` over a canonical text of the row), so only pending rows leave it; other SQLAlchemy databases
hash in Python over pages of rows. The hash is only ever compared with hashes computed by the same
warehouse.

Pending rows are read in pages ordered by key (keyset pagination), so a caller can stream them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.errors import SchemaError, missing_columns
from pipeline.warehouse.base import Warehouse, check_identifier, is_null

log = logging.getLogger(__name__)

HASH_COLUMN = "source_hash"  # stored in the enriched and quarantine tables
ROW_HASH = "_source_hash"  # the current hash, added to each pending row read from the source
KEY = "response_id"
_SQL_HASH_DIALECTS = ("duckdb", "postgresql")


def _hash_sql(wh: Warehouse, columns: list[str], alias: str) -> str:
    """SQL for the md5 of a row's canonical text: ``name<RS>value`` parts joined by <US>, NULLs left out."""
    text = "VARCHAR" if wh.dialect == "duckdb" else "TEXT"
    parts = [
        f"CASE WHEN {alias}.{wh._quote(c)} IS NULL THEN NULL "
        f"ELSE '{c.replace(chr(39), chr(39) * 2)}' || chr(30) || CAST({alias}.{wh._quote(c)} AS {text}) END"
        for c in sorted(columns)
    ]
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"


def _hash_python(row: dict[str, Any]) -> str:
    """The Python counterpart of :func:`_hash_sql` (for databases without ``md5``)."""
    parts = [f"{c}\x1e{row[c]}" for c in sorted(row) if not is_null(row[c])]
    return hashlib.md5("\x1f".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def _source_types(wh: Warehouse, source: str) -> dict[str, str]:
    types = wh._column_types(check_identifier(source, "table"))
    if not types:
        raise SchemaError(
            f"Source table {source!r} does not exist in {wh.describe()}. Tables found: {wh.tables()}. "
            "Load the survey responses first (feedback enrich --source FILE), or fix tables.source in "
            "the config."
        )
    if KEY not in types:
        raise missing_columns(f"source table {source!r}", [KEY], list(types))
    return types


def _done_tables(wh: Warehouse, config: EnrichmentConfig) -> dict[str, list[str]]:
    """The enriched and quarantine tables that exist, with their columns (each must have the key)."""
    found = {}
    for table in (config.tables.enriched, config.tables.quarantine):
        have = list(wh._column_types(table))
        if have and KEY not in have:
            raise missing_columns(f"table {table!r}", [KEY], have)
        if have:
            found[table] = have
    return found


def _done_conditions(wh: Warehouse, config: EnrichmentConfig, row_hash: str, key: str) -> list[str]:
    """``NOT EXISTS`` conditions: no enriched/quarantine row with this key and this content hash."""
    conditions = []
    for i, (table, have) in enumerate(_done_tables(wh, config).items()):
        alias = f"d{i}"
        match = f"{alias}.{wh._quote(KEY)} = {key}"
        if HASH_COLUMN in have:
            match += f" AND {alias}.{wh._quote(HASH_COLUMN)} = {row_hash}"
        else:  # a table written before content hashes: every row is re-checked (see migrations)
            match += " AND 1 = 0"
        conditions.append(f"NOT EXISTS (SELECT 1 FROM {wh._qualified(table)} {alias} WHERE {match})")
    return conditions


def iter_pending(wh: Warehouse, config: EnrichmentConfig, page_size: int = 50_000) -> Iterator[pd.DataFrame]:
    """Yield the pending source rows in pages of at most ``page_size``, ordered by ``response_id``.

    Each page has the source table's columns plus ``_source_hash`` (the row's current content hash,
    to be stored with its enrichment or quarantine record).
    """
    source = config.tables.source
    types = _source_types(wh, source)
    if wh.dialect not in _SQL_HASH_DIALECTS:
        yield from _iter_pending_python(wh, config, types, page_size)
        return
    key_cmp = wh._key_expr(f"x.{wh._quote(KEY)}", types[KEY])
    after: str | None = None
    while True:
        # The key filter goes inside, before the hash: a page hashes only the rows after the last one.
        inner, conditions = _pending_sql(wh, config, types, after is not None)
        where = list(conditions)
        params: dict[str, Any] = {}
        if after is not None:
            where.append(f"{key_cmp} > :after")
            params["after"] = after
        query = (
            f"SELECT x.* FROM ({inner}) x WHERE {' AND '.join(where)} "
            f"ORDER BY {key_cmp} LIMIT {int(page_size)}"
        )
        page = wh._query(query, params, {**types, ROW_HASH: "text"})
        if page.empty:
            return
        yield page
        if len(page) < page_size:
            return
        after = str(page[KEY].iloc[-1])


def _pending_sql(
    wh: Warehouse, config: EnrichmentConfig, types: dict[str, str], after: bool = False
) -> tuple[str, list[str]]:
    """The source rows with their hash (a subquery to alias ``x``; with ``after``, only the rows whose
    key is above the parameter ``:after``) and the conditions that make one pending (DuckDB and
    PostgreSQL)."""
    inner = (
        f"SELECT s.*, {_hash_sql(wh, list(types), 's')} AS {wh._quote(ROW_HASH)} "
        f"FROM {wh._qualified(config.tables.source)} s"
    )
    if after:
        inner += f" WHERE {wh._key_expr(f's.{wh._quote(KEY)}', types[KEY])} > :after"
    conditions = _done_conditions(wh, config, f"x.{wh._quote(ROW_HASH)}", f"x.{wh._quote(KEY)}")
    return inner, [f"x.{wh._quote(KEY)} IS NOT NULL", *conditions]


def _iter_pending_python(
    wh: Warehouse, config: EnrichmentConfig, types: dict[str, str], page_size: int
) -> Iterator[pd.DataFrame]:
    """Pages of the source hashed in Python; pending rows compared with the stored hashes by key."""
    source = config.tables.source
    key_cmp = wh._key_expr(f"s.{wh._quote(KEY)}", types[KEY])
    after: str | None = None
    while True:
        params: dict[str, Any] = {}
        where = f"s.{wh._quote(KEY)} IS NOT NULL"
        if after is not None:
            where += f" AND {key_cmp} > :after"
            params["after"] = after
        rows = wh._query(
            f"SELECT s.* FROM {wh._qualified(source)} s WHERE {where} ORDER BY {key_cmp} LIMIT {int(page_size)}",
            params,
            types,
        )
        if rows.empty:
            return
        hashes = [_hash_python(r) for r in rows.to_dict(orient="records")]
        rows = rows.assign(**{ROW_HASH: hashes})
        ids = rows[KEY].astype(str).tolist()
        done: set[tuple[str, str]] = set()
        for table, have in _done_tables(wh, config).items():
            if HASH_COLUMN in have:
                stored = wh.read(table, [KEY, HASH_COLUMN], where={KEY: ids})
                done |= set(zip(stored[KEY].astype(str), stored[HASH_COLUMN].astype(str), strict=True))
        keep = [(i, h) not in done for i, h in zip(ids, hashes, strict=True)]
        page = rows[keep].reset_index(drop=True)
        if len(page):
            yield page
        if len(rows) < page_size:
            return
        after = ids[-1]


def read_pending(wh: Warehouse, config: EnrichmentConfig, page_size: int = 50_000) -> pd.DataFrame:
    """All pending source rows (see :func:`iter_pending`), ordered by ``response_id``."""
    pages = list(iter_pending(wh, config, page_size))
    if not pages:
        types = _source_types(wh, config.tables.source)
        return pd.DataFrame(columns=[*types, ROW_HASH])
    return pd.concat(pages, ignore_index=True) if len(pages) > 1 else pages[0]


def count_pending(wh: Warehouse, config: EnrichmentConfig) -> int:
    """How many source rows are pending (see the module docstring)."""
    if not wh.table_exists(config.tables.source):
        return 0
    types = _source_types(wh, config.tables.source)
    if wh.dialect not in _SQL_HASH_DIALECTS:
        return sum(len(page) for page in iter_pending(wh, config))
    inner, conditions = _pending_sql(wh, config, types)  # a COUNT in the database: no row leaves it
    query = f"SELECT COUNT(*) AS n FROM ({inner}) x WHERE {' AND '.join(conditions)}"
    return int(wh._query(query, None, {"n": "bigint"})["n"].iloc[0])


def removed_ids(wh: Warehouse, config: EnrichmentConfig) -> list[str]:
    """Ids stored in the enriched table or the quarantine whose source row no longer exists."""
    t = config.tables
    if not wh.table_exists(t.source):
        return []
    found: list[str] = []
    for table in (t.enriched, t.quarantine):
        if not wh.table_exists(table):
            continue
        k = wh._quote(KEY)
        rows = wh._query(
            f"SELECT d.{k} AS {k} FROM {wh._qualified(table)} d WHERE NOT EXISTS "
            f"(SELECT 1 FROM {wh._qualified(t.source)} s WHERE s.{k} = d.{k})",
            None,
            {KEY: "text"},
        )
        found += rows[KEY].astype(str).tolist()
    return sorted(set(found))
