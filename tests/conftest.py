"""Shared pytest fixtures.

PostgreSQL: tests that need a server take the ``pg_url`` fixture, which skips them unless
``FEEDBACK_TEST_PG_URL`` is set. To run them locally::

    source .ci/postgres.sh && pg_start      # a throw-away server; exports FEEDBACK_TEST_PG_URL
    .venv/bin/pytest -q tests/test_warehouse.py
    pg_stop
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_URL_ENV = "FEEDBACK_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the test PostgreSQL server (skips the test when ``FEEDBACK_TEST_PG_URL`` is unset)."""
    url = os.environ.get(PG_URL_ENV, "").strip()
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set (start a server with `source .ci/postgres.sh && pg_start`)")
    return url


def unique_pg_schema(prefix: str = "t") -> str:
    """A fresh schema name, so that tests sharing one PostgreSQL database do not see each other."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def drop_pg_schema(url: str, schema: str) -> None:
    """Drop a test schema and everything in it (no error when it does not exist)."""
    import sqlalchemy as sa

    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@contextmanager
def pg_schema(url: str, prefix: str = "t") -> Iterator[str]:
    """Yield a fresh schema name and drop the schema afterwards (the warehouse creates it on open)."""
    schema = unique_pg_schema(prefix)
    try:
        yield schema
    finally:
        drop_pg_schema(url, schema)


def write_config(tmp: Path, warehouse: str, **extra: object) -> Path:
    """A config file in ``tmp`` for a fast real run: the project's taxonomy, an empty tagger registry and
    model store, the hashing embedder and topics from 20 answers; ``extra`` replaces top-level keys."""
    from pipeline.config import DEFAULT_CONFIG

    cfg = tmp / "enrichment.yaml"
    body = {
        "warehouse": warehouse,
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "tagger": {
            "taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"),
            "model_dir": str(tmp / "models"),
        },
        "embedder": {"name": "hashing"},
        "topics": {"min_docs": 20},
        "model_store": {"path": str(tmp / "model_store")},
        **extra,
    }
    cfg.write_text(json.dumps(body))  # JSON is YAML
    return cfg
