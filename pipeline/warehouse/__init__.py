"""Warehouse access: one ``Warehouse`` interface, two backends.

* DuckDB (the embedded default): a file path, or ``duckdb:///relative/path`` /
  ``duckdb:////absolute/path`` (SQLAlchemy style), or ``":memory:"``.
* Any SQLAlchemy database: ``postgresql://...`` (psycopg 3), ``postgresql+psycopg://...``,
  ``sqlite:///file.db``, or any other SQLAlchemy URL whose dialect and driver are installed.

Example:
    >>> from pipeline.warehouse import open_warehouse
    >>> with open_warehouse("var/warehouse.duckdb") as wh:  # doctest: +SKIP
    ...     wh.upsert("topics", topics_frame, key=["topic_id"])

Importing this package imports neither duckdb nor sqlalchemy: the backend is imported when a warehouse
is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse

__all__ = ["VALID_SCHEMES", "Warehouse", "open_warehouse"]

#: What ``open_warehouse`` accepts, for messages.
VALID_SCHEMES = [
    "a file path (DuckDB)",
    "duckdb:///path",
    "postgresql://",
    "postgresql+psycopg://",
    "sqlite:///path",
    "any other installed SQLAlchemy dialect (dialect+driver://)",
]


def __getattr__(name: str) -> object:
    # `from pipeline.warehouse import Warehouse` works without importing the backends eagerly.
    if name == "Warehouse":
        from pipeline.warehouse.base import Warehouse

        return Warehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _duckdb_path(target: str) -> str:
    rest = target.split("://", 1)[1]
    # SQLAlchemy convention: duckdb:///relative.duckdb, duckdb:////abs/file.duckdb.
    path = rest[1:] if rest.startswith("/") else rest
    if not path:
        raise ConfigError(
            f"Warehouse URL {target!r} names no file. Write duckdb:///relative/path.duckdb, "
            "duckdb:////absolute/path.duckdb or duckdb:///:memory:."
        )
    return path


def open_warehouse(
    target: str | os.PathLike[str], *, schema: str | None = None, config: EnrichmentConfig | None = None
) -> Warehouse:
    """Open a warehouse from a path or URL.

    Args:
        target: A DuckDB file path (parent folders are created), ``duckdb:///path``, ``":memory:"``,
            or a SQLAlchemy URL: ``postgresql://`` (opened with psycopg 3), ``postgresql+psycopg://``,
            ``sqlite:///``, ...
        schema: Schema to keep the tables in (created when missing). None: the database's default
            (DuckDB ``main``, PostgreSQL ``public``).
        config: The enrichment config: its tables (names, segment columns) become the warehouse's
            declared tables (:func:`pipeline.warehouse.tables.declare`). None: every table is inferred
            from the frames written to it (until :meth:`Warehouse.use_tables`).

    Returns:
        A :class:`~pipeline.warehouse.base.Warehouse`; close it (or use it as a context manager).

    Raises:
        ConfigError: For an unknown URL scheme (the message lists the valid ones).
        MissingDependencyError: When the database's Python driver is not installed.
    """
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"Expected a warehouse path or URL, got {target!r}. Valid: {', '.join(VALID_SCHEMES)}."
        )
    warehouse = _open(target.strip(), schema)
    if config is not None:
        from pipeline.warehouse.tables import declare

        warehouse.use_tables(declare(config))
    return warehouse


def _open(target: str, schema: str | None) -> Warehouse:
    if "://" not in target:
        from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(target if target == ":memory:" else Path(target), schema=schema)
    scheme = target.split("://", 1)[0].lower()
    if scheme == "duckdb":
        from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

        path = _duckdb_path(target)
        return DuckDBWarehouse(path if path == ":memory:" else Path(path), schema=schema)
    from pipeline.warehouse.sql_backend import SqlWarehouse

    return SqlWarehouse(target, schema=schema)
