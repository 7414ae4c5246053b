"""Upgrades: a warehouse written by the release before schema versions is upgraded in place.

The fixture (tests/fixtures/warehouse_v1, see its README) is a DuckDB export written by that release.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.check import check_warehouse
from pipeline.config import load_config
from pipeline.errors import FeedbackError
from pipeline.migrations import SCHEMA_VERSION, schema_version, upgrade
from pipeline.model_store import open_store
from pipeline.runner import run_enrichment
from pipeline.schema import TABLE_KEYS
from pipeline.warehouse import open_warehouse
from tests.conftest import pg_schema, write_config

FIXTURE = Path(__file__).parent / "fixtures" / "warehouse_v1"


def import_fixture(path: Path) -> None:
    """The v1 warehouse as a DuckDB file (IMPORT DATABASE with the fixture's own folder)."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute((FIXTURE / "schema.sql").read_text())
        for line in (FIXTURE / "load.sql").read_text().splitlines():
            if line.strip():
                name = line.split("'")[1].rsplit("/", 1)[1]
                con.execute(line.replace(line.split("'")[1], str(FIXTURE / name)))
    finally:
        con.close()


def snapshot(warehouse: str) -> dict[str, pd.DataFrame]:
    with open_warehouse(warehouse) as wh:
        return {t: wh.read(t) for t in ("survey_responses", "feedback_enriched", "feedback_sentences")}


def assert_upgraded(warehouse: str, cfg: Path, before: dict[str, pd.DataFrame]) -> None:
    config = load_config(cfg)
    summary = run_enrichment(config)
    with open_warehouse(warehouse) as wh:
        assert schema_version(wh, config) == SCHEMA_VERSION
        result = check_warehouse(wh, config)
        assert result.ok, [v.message for v in result.violations]
        enriched = wh.read("feedback_enriched")
        runs = wh.read("pipeline_runs")
        # Schema 3: the topic_models rows became model-store versions (same ids), the table is gone.
        stored = {m["version"] for m in open_store(config, "topics", wh).versions()}
        assert not wh.table_exists("topic_models")
    fixture_versions = set(pd.read_parquet(FIXTURE / "topic_models.parquet")["model_version"])
    assert fixture_versions and fixture_versions <= stored
    # Every stored row was re-checked once (no content hash before) and kept its enrichment.
    n = len(before["survey_responses"])
    assert summary.rows_in == n and summary.rows_enriched + summary.rows_quarantined == n
    assert enriched["source_hash"].notna().all()
    assert set(enriched["response_id"]) == set(before["feedback_enriched"]["response_id"])
    old = before["feedback_enriched"].set_index("response_id")["text_redacted"]
    new = enriched.set_index("response_id")["text_redacted"]
    assert (new.loc[old.index] == old).all()
    # The old run record is still there, next to the new one.
    assert len(runs) == 2 and set(runs["status"]) == {"success"}
    # A second run finds nothing to do.
    again = run_enrichment(config)
    assert again.rows_in == 0


def test_duckdb_warehouse_of_the_previous_release_is_upgraded_in_place(tmp_path):
    path = tmp_path / "v1.duckdb"
    import_fixture(path)
    cfg = write_config(tmp_path, str(path))
    config = load_config(cfg)
    with open_warehouse(str(path)) as wh:
        assert schema_version(wh, config) == 1
        assert "source_hash" not in wh.columns("feedback_enriched")
    assert_upgraded(str(path), cfg, snapshot(str(path)))


def test_postgres_warehouse_of_the_previous_release_is_upgraded_in_place(tmp_path, pg_url):
    """The v1 tables copied to PostgreSQL as that release wrote them (same table-creation code)."""
    path = tmp_path / "v1.duckdb"
    import_fixture(path)
    before = snapshot(str(path))
    with pg_schema(pg_url, "upg") as schema:
        import sqlalchemy as sa

        admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = pg_url + ("&" if "?" in pg_url else "?") + f"options=-csearch_path%3D{schema}"
        with open_warehouse(str(path)) as src, open_warehouse(url) as dst:
            for table in src.tables():
                frame = src.read(table)
                key = TABLE_KEYS.get(table) or [frame.columns[0]]
                dst.upsert(table, frame, key=key)
        assert_upgraded(url, write_config(tmp_path, url), before)


def test_a_warehouse_of_a_newer_release_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    cfg = load_config(write_config(tmp_path, str(path)))
    with open_warehouse(str(path)) as wh:
        wh.upsert("warehouse_meta", pd.DataFrame({"key": ["schema_version"], "value": ["99"]}), key=["key"])
        with pytest.raises(FeedbackError, match="newer release"):
            upgrade(wh, cfg)
