"""Rows are pending by content, and a transaction() block commits whole or not at all (every backend)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest

from pipeline.config import EnrichmentConfig
from pipeline.ingest.pending import HASH_COLUMN, ROW_HASH, count_pending, read_pending, removed_ids
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from tests.conftest import pg_schema


@pytest.fixture(params=["duckdb", "sqlite", "postgres"])
def wh(request, tmp_path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        with open_warehouse(str(tmp_path / "wh.duckdb")) as w:
            yield w
    elif request.param == "sqlite":
        with open_warehouse(f"sqlite:///{tmp_path / 'wh.sqlite'}") as w:
            yield w
    else:
        url = request.getfixturevalue("pg_url")
        with pg_schema(url, "pend") as schema, open_warehouse(url, schema=schema) as w:
            yield w


def source(ids: list[str], **changes: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "response_id": ids,
            "survey_type": "nps",
            "score": [7.0] * len(ids),
            "comment": [f"comment {i}" for i in ids],
            "submitted_at": pd.to_datetime(["2026-01-05"] * len(ids)).astype("datetime64[us]"),
            "channel": "web",
        }
    )
    return frame.assign(**changes)


def mark_done(wh: Warehouse, config: EnrichmentConfig, table: str) -> None:
    """Store every pending row in ``table`` with its current hash (as a run would)."""
    pending = read_pending(wh, config)
    rows = pd.DataFrame({"response_id": pending["response_id"], HASH_COLUMN: pending[ROW_HASH]})
    wh.upsert(table, rows, key=["response_id"])


def test_pending_is_decided_by_content_not_by_time(wh):
    config = EnrichmentConfig()
    wh.upsert("survey_responses", source(["a", "b", "c"]), key=["response_id"])
    assert read_pending(wh, config)["response_id"].tolist() == ["a", "b", "c"]
    mark_done(wh, config, "feedback_enriched")
    assert count_pending(wh, config) == 0
    # A late row (dated years before everything else) is pending like any new row.
    late = source(["0-late"], submitted_at=pd.to_datetime(["2001-06-01"]).astype("datetime64[us]"))
    wh.upsert("survey_responses", late, key=["response_id"])
    assert read_pending(wh, config)["response_id"].tolist() == ["0-late"]
    mark_done(wh, config, "quarantine")
    # An edited comment, an edited score and an edited segment each make the row pending again.
    wh.upsert("survey_responses", source(["a"], comment=["new text"]), key=["response_id"])
    wh.upsert("survey_responses", source(["b"], score=[2.0]), key=["response_id"])
    wh.upsert("survey_responses", source(["c"], channel=["store"]), key=["response_id"])
    assert read_pending(wh, config)["response_id"].tolist() == ["a", "b", "c"]
    # Re-sending a row unchanged changes nothing.
    mark_done(wh, config, "feedback_enriched")
    wh.upsert("survey_responses", source(["a"], comment=["new text"]), key=["response_id"])
    assert count_pending(wh, config) == 0


def test_a_new_empty_column_or_other_stored_columns_make_nothing_pending(wh):
    config = EnrichmentConfig()
    wh.upsert("survey_responses", source(["a", "b"]), key=["response_id"])
    mark_done(wh, config, "feedback_enriched")
    # A later export adds a segment column (NULL for the stored rows): their content did not change.
    wh.upsert("survey_responses", source(["z"], plan=["pro"]), key=["response_id"])
    assert read_pending(wh, config)["response_id"].tolist() == ["z"]
    # New model versions are lineage of the enriched row, not content of the source row.
    stored = wh.read("feedback_enriched")
    wh.upsert("feedback_enriched", stored.assign(tagger_version="v9"), key=["response_id"])
    assert read_pending(wh, config)["response_id"].tolist() == ["z"]


def test_pages_are_keyed_and_cover_every_row(wh):
    config = EnrichmentConfig()
    ids = [f"r{i:03d}" for i in range(25)]
    wh.upsert("survey_responses", source(ids), key=["response_id"])
    from pipeline.ingest.pending import iter_pending

    pages = list(iter_pending(wh, config, page_size=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert pd.concat(pages)["response_id"].tolist() == ids


def test_rows_deleted_from_the_source_are_found(wh):
    config = EnrichmentConfig()
    wh.upsert("survey_responses", source(["a", "b"]), key=["response_id"])
    mark_done(wh, config, "feedback_enriched")
    wh.delete("survey_responses", {"response_id": ["b"]})
    assert removed_ids(wh, config) == ["b"]


def test_a_transaction_commits_whole_or_not_at_all(wh):
    wh.upsert("t_parent", pd.DataFrame({"k": ["a"], "v": [1]}), key=["k"])

    class Boom(Exception):
        pass

    with pytest.raises(Boom), wh.transaction():
        wh.upsert("t_parent", pd.DataFrame({"k": ["a", "b"], "v": [2, 2]}), key=["k"])
        wh.upsert("t_child", pd.DataFrame({"k": ["a"], "n": [1]}), key=["k"])  # a new table, too
        wh.delete("t_parent", {"k": ["a"]})
        assert wh.count("t_parent") == 1  # reads see the block's own writes
        raise Boom
    assert wh.read("t_parent").to_dict(orient="list") == {"k": ["a"], "v": [1]}
    assert not wh.table_exists("t_child")
    with wh.transaction():
        wh.upsert("t_parent", pd.DataFrame({"k": ["b"], "v": [3]}), key=["k"])
        with wh.transaction():  # nested blocks join the outer one
            wh.upsert("t_child", pd.DataFrame({"k": ["b"], "n": [1]}), key=["k"])
    assert wh.count("t_parent") == 2 and wh.count("t_child") == 1


def test_implausible_dates_are_quarantined_with_their_own_reason():
    from pipeline.ingest.source import conform, validate

    rows = pd.DataFrame(
        {
            "response_id": ["ok", "future", "max", "old", "zero"],
            "survey_type": "nps",
            "score": 5,
            "comment": "x",
            "submitted_at": ["2026-01-01", "2099-01-01", "9999-12-31", "1900-01-01", "0001-01-01"],
        }
    )
    window = (dt.datetime(2000, 1, 1), dt.datetime(2026, 3, 3))
    out = validate(conform(rows), window)
    assert out.valid["response_id"].tolist() == ["ok"]
    assert set(out.quarantined["reason"]) == {"implausible_submitted_at"}
    assert len(out.quarantined) == 4


def test_pages_follow_byte_order_whatever_the_column_collation(wh):
    """Keyset paging must use one fixed, byte-wise key order, also on a PostgreSQL column with a
    linguistic collation (under ICU "a1" < "B1" < "b1"): otherwise a page boundary skips rows."""
    config = EnrichmentConfig()
    if wh.dialect == "postgresql":
        import sqlalchemy as sa

        with wh.engine.begin() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")).first():
                pytest.skip("this PostgreSQL has no ICU collations")
            conn.execute(
                sa.text(
                    f'CREATE TABLE "{wh.schema}".survey_responses (response_id TEXT COLLATE "und-x-icu" '
                    "PRIMARY KEY, survey_type TEXT, score DOUBLE PRECISION, comment TEXT, submitted_at "
                    "TIMESTAMP, channel TEXT)"
                )
            )
    ids = ["b1", "B1", "a1", "A2", "a2", "B0"]
    wh.upsert("survey_responses", source(ids), key=["response_id"])
    from pipeline.ingest.pending import iter_pending

    pages = list(iter_pending(wh, config, page_size=1))
    assert [p["response_id"].iloc[0] for p in pages] == sorted(ids)  # Python's order is byte order
    assert count_pending(wh, config) == len(ids)


def test_missing_source_or_key_is_a_clear_error(wh):
    from pipeline.errors import SchemaError

    config = EnrichmentConfig()
    with pytest.raises(SchemaError, match="does not exist"):
        read_pending(wh, config)
    wh.upsert("survey_responses", source(["a"]), key=["response_id"])
    wh.upsert("feedback_enriched", pd.DataFrame({"id": ["a"]}), key=["id"])
    with pytest.raises(SchemaError, match="response_id"):
        read_pending(wh, config)
