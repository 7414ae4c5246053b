"""Open a warehouse for reading only: a DuckDB file read-only (it can be read while others read it, and is
never created), anything else as :func:`pipeline.warehouse.open_warehouse` opens it."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse


def _duckdb_file(target: str) -> Path | None:
    """The file a DuckDB target names (a plain path or ``duckdb:///``), None for memory and other URLs."""
    if "://" not in target:
        return None if target == ":memory:" else Path(target).expanduser()
    scheme, rest = target.split("://", 1)
    if scheme.lower() != "duckdb":
        return None
    # SQLAlchemy convention (as open_warehouse reads it): duckdb:///relative, duckdb:////absolute.
    path = rest[1:] if rest.startswith("/") else rest
    return None if path in ("", ":memory:") else Path(path).expanduser()


def open_for_reading(target: str | os.PathLike[str]) -> Warehouse:
    """Open a warehouse for reading: a DuckDB file read-only, anything else as ``open_warehouse`` does.

    Read-only, a DuckDB file can be checked while other processes read it too, and a check can never
    create or change it.

    Args:
        target: A DuckDB file path, ``duckdb:///path``, or any URL :func:`open_warehouse` accepts.

    Returns:
        The warehouse; close it (or use it as a context manager).

    Raises:
        ConfigError: When a DuckDB target names a file that does not exist (nothing is created).
        FeedbackError: When another process holds the DuckDB file's write lock.
    """
    text = os.fspath(target).strip() if isinstance(target, os.PathLike) else str(target).strip()
    path = _duckdb_file(text)
    if path is None:
        return open_warehouse(text)
    if not path.is_file():
        raise ConfigError(
            f"No DuckDB warehouse file at {path}. Pass --warehouse PATH|URL (or set `warehouse` in the "
            "config), or create it first with `feedback enrich --source FILE`."
        )
    from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse(path, read_only=True)
