"""The Warehouse interface, tested against every backend.

``duckdb`` (a file in tmp_path) and ``sqlite`` (the portable SQLAlchemy path) always run; ``postgres``
runs when FEEDBACK_TEST_PG_URL is set (see tests/conftest.py and .ci/postgres.sh), each test in a
schema of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, FeedbackError, MissingDependencyError, SchemaError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from tests.conftest import pg_schema

REPO = Path(__file__).resolve().parents[1]

BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    kind = request.param
    if kind == "postgres":
        url = request.getfixturevalue("pg_url")
        with pg_schema(url, "wh") as schema, open_warehouse(url, schema=schema) as warehouse:
            yield warehouse
        return
    target = tmp_path / "wh" / "test.duckdb" if kind == "duckdb" else f"sqlite:///{tmp_path / 'test.sqlite'}"
    with open_warehouse(target) as warehouse:
        yield warehouse


def backend(wh: Warehouse) -> str:
    return "duckdb" if wh.url.startswith("duckdb") else wh.url.split(":", 1)[0].split("+")[0]


def responses(ids: list[str], score: int = 5, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": ids,
            "survey_type": ["nps"] * len(ids),
            "score": [score] * len(ids),
            "comment": [f"comment {i}" for i in ids],
            "submitted_at": pd.date_range(start, periods=len(ids), freq="h"),
        }
    )


def by_key(frame: pd.DataFrame, key: str = "response_id") -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


# ---- upsert ----------------------------------------------------------------------------------------


def test_upsert_creates_table(wh: Warehouse) -> None:
    assert not wh.table_exists("survey_responses")
    assert wh.count("survey_responses") == 0
    assert wh.columns("survey_responses") == []

    written = wh.upsert("survey_responses", responses(["r1", "r2", "r3"]), key=["response_id"])

    assert written == 3
    assert wh.table_exists("survey_responses")
    assert "survey_responses" in wh.tables()
    assert wh.columns("survey_responses") == [
        "response_id",
        "survey_type",
        "score",
        "comment",
        "submitted_at",
    ]
    assert wh.count("survey_responses") == 3


def test_upsert_is_idempotent(wh: Warehouse) -> None:
    df = responses(["r1", "r2", "r3"])
    wh.upsert("t", df, key=["response_id"])
    first = by_key(wh.read("t"))
    wh.upsert("t", df, key=["response_id"])
    second = by_key(wh.read("t"))

    assert wh.count("t") == 3
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(second, df, check_dtype=False)


def test_upsert_replaces_rows_by_key(wh: Warehouse) -> None:
    wh.upsert("t", responses(["r1", "r2", "r3"], score=5), key=["response_id"])
    update = responses(["r1", "r4"], score=9).drop(columns=["comment"])

    assert wh.upsert("t", update, key=["response_id"]) == 2

    out = by_key(wh.read("t")).set_index("response_id")
    assert wh.count("t") == 4
    assert out.loc["r1", "score"] == 9 and out.loc["r4", "score"] == 9
    assert out.loc["r2", "score"] == 5 and out.loc["r2", "comment"] == "comment r2"
    # A replaced row takes the new frame's values: columns the frame lacks become NULL.
    assert pd.isna(out.loc["r1", "comment"])


def test_upsert_adds_new_columns(wh: Warehouse) -> None:
    wh.upsert("t", responses(["r1", "r2"]), key=["response_id"])
    more = responses(["r3"]).assign(language=["de"], tags=[["price", "app"]])

    wh.upsert("t", more, key=["response_id"])

    assert wh.columns("t")[-2:] == ["language", "tags"]
    out = by_key(wh.read("t", ["response_id", "language", "tags"]))
    assert out["language"].isna().tolist() == [True, True, False]
    assert out["tags"].tolist() == [None, None, ["price", "app"]]


def test_upsert_keeps_last_duplicate_key(wh: Warehouse) -> None:
    df = pd.DataFrame({"response_id": ["r1", "r2", "r1"], "score": [1, 2, 9]})

    assert wh.upsert("t", df, key=["response_id"]) == 2

    out = by_key(wh.read("t"))
    assert out["score"].tolist() == [9, 2]


def test_upsert_composite_key(wh: Warehouse) -> None:
    tags = pd.DataFrame(
        {"response_id": ["r1", "r1", "r2"], "tag": ["price", "app", "price"], "score": [0.9, 0.5, 0.7]}
    )
    wh.upsert("feedback_tags", tags, key=["response_id", "tag"])
    wh.upsert(
        "feedback_tags",
        pd.DataFrame({"response_id": ["r1"], "tag": ["app"], "score": [0.1]}),
        key=["response_id", "tag"],
    )

    out = wh.read("feedback_tags").sort_values(["response_id", "tag"]).reset_index(drop=True)
    assert out[["response_id", "tag"]].values.tolist() == [["r1", "app"], ["r1", "price"], ["r2", "price"]]
    assert out["score"].tolist() == [0.1, 0.9, 0.7]


def test_empty_frame_creates_table(wh: Warehouse) -> None:
    empty = pd.DataFrame({"topic_id": pd.Series([], dtype="int64"), "label": pd.Series([], dtype=object)})
    assert wh.upsert("topics", empty, key=["topic_id"]) == 0
    assert wh.columns("topics") == ["topic_id", "label"]
    assert wh.count("topics") == 0


# ---- types -----------------------------------------------------------------------------------------


def typed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": pd.Series(["r1", "r2", "r3"]),  # pandas 3: the "str" dtype
            "text": pd.Series(["héllo", None, "x"], dtype=object),
            "n": np.array([1, 2, 3], dtype=np.int64),
            "n_null": pd.Series([1, None, 3], dtype="Int64"),
            "f": [1.5, np.nan, -2.25],
            "flag": [True, False, True],
            "flag_null": pd.Series([True, None, False], dtype=object),
            "ts": pd.to_datetime(["2024-03-01 10:00:00.123456", None, "2024-03-02 00:00:00.000000"]),
            "ts_tz": pd.to_datetime(["2024-03-01 10:00", "2024-07-01 10:00", "2024-12-31 23:30"]).tz_localize(
                "Europe/Paris"
            ),
            "tags": [["price", "app"], [], None],
            "tags_np": [np.array(["a", "b"]), np.array([], dtype=str), np.array(["c"])],
            "meta": [{"k": 1, "nested": [1, 2]}, None, {"k": "ü"}],
            "raw": [b"\x00\x01\xff", None, b""],
        }
    )


def test_dtypes_round_trip(wh: Warehouse) -> None:
    wh.upsert("typed", typed_frame(), key=["response_id"])
    out = by_key(wh.read("typed"))

    assert out["response_id"].tolist() == ["r1", "r2", "r3"]
    assert out["text"].tolist()[0] == "héllo" and pd.isna(out["text"][1])
    assert out["n"].dtype == "int64" and out["n"].tolist() == [1, 2, 3]
    assert str(out["n_null"].dtype) == "Int64" and out["n_null"].isna().tolist() == [False, True, False]
    assert out["f"].dtype == "float64" and out["f"][0] == 1.5 and np.isnan(out["f"][1])
    assert out["flag"].dtype == bool and out["flag"].tolist() == [True, False, True]
    assert str(out["flag_null"].dtype) == "boolean" and out["flag_null"].isna().tolist() == [
        False,
        True,
        False,
    ]
    # Timestamps: naive datetime64, microseconds kept; tz-aware ones converted to naive UTC.
    assert pd.api.types.is_datetime64_dtype(out["ts"].dtype)
    assert out["ts"][0] == pd.Timestamp("2024-03-01 10:00:00.123456") and pd.isna(out["ts"][1])
    assert pd.api.types.is_datetime64_dtype(out["ts_tz"].dtype)
    assert out["ts_tz"].tolist() == [
        pd.Timestamp("2024-03-01 09:00"),  # CET = UTC+1
        pd.Timestamp("2024-07-01 08:00"),  # CEST = UTC+2
        pd.Timestamp("2024-12-31 22:30"),
    ]
    # Lists come back as Python lists (not numpy arrays).
    assert out["tags"].tolist() == [["price", "app"], [], None]
    assert all(type(v) is list for v in out["tags"][:2])
    assert out["tags_np"].tolist() == [["a", "b"], [], ["c"]]
    # dicts are stored as JSON text.
    assert json.loads(out["meta"][0]) == {"k": 1, "nested": [1, 2]}
    assert pd.isna(out["meta"][1]) and json.loads(out["meta"][2]) == {"k": "ü"}
    assert out["raw"].tolist() == [b"\x00\x01\xff", None, b""]
    assert all(type(v) is bytes for v in out["raw"] if v is not None)
    # NaN was written as NULL, not as a NaN value.
    assert wh.sql("SELECT COUNT(*) AS n FROM typed WHERE f IS NULL")["n"].iloc[0] == 1
    assert wh.sql("SELECT COUNT(*) AS n FROM typed WHERE tags IS NULL")["n"].iloc[0] == 1


def test_native_column_types(wh: Warehouse) -> None:
    kind = backend(wh)
    if kind == "sqlite":
        pytest.skip("SQLite has no information_schema; its types are checked through read-back")
    wh.upsert("typed", typed_frame(), key=["response_id"])
    types = wh.sql(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :t", {"t": "typed"}
    )
    found = dict(zip(types["column_name"], types["data_type"], strict=True))
    if kind == "duckdb":
        # pandas 3's "str" dtype must map to VARCHAR, lists to VARCHAR[].
        expected = {
            "response_id": "VARCHAR",
            "tags": "VARCHAR[]",
            "raw": "BLOB",
            "ts": "TIMESTAMP",
            "n": "BIGINT",
        }
        expected |= {"f": "DOUBLE", "flag": "BOOLEAN", "meta": "VARCHAR"}
    else:
        expected = {
            "response_id": "text",
            "tags": "ARRAY",
            "raw": "bytea",
            "ts": "timestamp without time zone",
        }
        expected |= {"n": "bigint", "f": "double precision", "flag": "boolean", "meta": "text"}
    assert {c: found[c] for c in expected} == expected


def test_upsert_into_existing_column_types(wh: Warehouse) -> None:
    wh.upsert("t", pd.DataFrame({"k": ["a"], "tags": [["x"]], "score": [1.5]}), key=["k"])
    # Next batch: all-missing lists, ints into the float column.
    wh.upsert("t", pd.DataFrame({"k": ["b"], "tags": [None], "score": [2]}), key=["k"])
    out = by_key(wh.read("t"), "k")
    assert out["tags"].tolist() == [["x"], None]
    assert out["score"].tolist() == [1.5, 2.0]
    with pytest.raises(SchemaError, match="score"):
        wh.upsert("t", pd.DataFrame({"k": ["c"], "score": ["not a number"]}), key=["k"])


# ---- read / delete / replace -----------------------------------------------------------------------


def test_read_where_with_many_values(wh: Warehouse) -> None:
    ids = [f"r{i:06d}" for i in range(20_000)]
    df = pd.DataFrame({"response_id": ids, "score": np.arange(20_000) % 11, "grp": np.arange(20_000) % 3})
    wh.upsert("t", df, key=["response_id"])

    wanted = ids[::2] + [f"missing{i}" for i in range(100)]  # 10k present + 100 absent values
    out = wh.read("t", where={"response_id": wanted})
    assert len(out) == 10_000
    assert set(out["response_id"]) == set(ids[::2])

    everything = wh.read("t", ["response_id"], where={"response_id": ids})
    assert len(everything) == 20_000 and list(everything.columns) == ["response_id"]

    both = wh.read("t", ["response_id", "grp"], where={"response_id": ids[:3000], "grp": [0, 2]})
    assert len(both) == 2000 and set(both["grp"]) == {0, 2}

    assert len(wh.read("t", where={"response_id": []})) == 0
    assert list(wh.read("t", ["score"], where={"response_id": []}).columns) == ["score"]
    assert len(wh.read("t", where={"response_id": ["r000001", None]})) == 1


def test_read_where_on_timestamps_and_ints(wh: Warehouse) -> None:
    df = responses(["r1", "r2", "r3"])
    wh.upsert("t", df, key=["response_id"])
    stamps = [df["submitted_at"][0].to_pydatetime(), df["submitted_at"][2]]
    assert sorted(wh.read("t", where={"submitted_at": stamps})["response_id"]) == ["r1", "r3"]
    assert len(wh.read("t", where={"score": [5, 6]})) == 3
    assert len(wh.read("t", where={"score": [np.int64(5)]})) == 3


def test_read_missing_table_and_bad_arguments(wh: Warehouse) -> None:
    empty = wh.read("nope", ["a", "b"])
    assert empty.empty and list(empty.columns) == ["a", "b"]
    assert wh.read("nope").empty

    wh.upsert("t", responses(["r1"]), key=["response_id"])
    with pytest.raises(SchemaError, match="language"):
        wh.read("t", ["response_id", "language"])
    with pytest.raises(SchemaError, match="language"):
        wh.read("t", where={"language": ["de"]})
    with pytest.raises(SchemaError, match="list of values"):
        wh.read("t", where={"response_id": "r1"})


def test_read_range_and_max_value(wh: Warehouse) -> None:
    df = responses([f"r{i}" for i in range(6)])  # hourly from 2024-01-01 00:00
    df.loc[5, "submitted_at"] = pd.NaT
    df.loc[4, "score"] = 9
    wh.upsert("t", df, key=["response_id"])
    ts = df["submitted_at"]

    def ids(frame: pd.DataFrame) -> list[str]:
        return sorted(frame["response_id"])

    # both bounds inclusive; a pd.Timestamp, a datetime and a tz-aware bound all work
    assert ids(wh.read_range("t", "submitted_at", ts[1], ts[3].to_pydatetime())) == ["r1", "r2", "r3"]
    aware = pd.Timestamp("2024-01-01 03:00", tz="Europe/Paris")  # = 02:00 UTC
    assert ids(wh.read_range("t", "submitted_at", start=aware)) == ["r2", "r3", "r4"]  # NULL never matches
    assert ids(wh.read_range("t", "submitted_at", end=ts[0])) == ["r0"]
    assert len(wh.read_range("t", "submitted_at")) == 6  # no bound: everything
    out = wh.read_range("t", "score", 6, None, columns=["response_id", "submitted_at"])
    assert list(out.columns) == ["response_id", "submitted_at"] and ids(out) == ["r4"]
    assert pd.api.types.is_datetime64_dtype(out["submitted_at"].dtype)
    assert wh.read_range("nope", "x", columns=["a"]).columns.tolist() == ["a"]
    with pytest.raises(SchemaError, match="language"):
        wh.read_range("t", "language", ts[0])

    assert wh.max_value("t", "submitted_at") == ts[4]
    assert isinstance(wh.max_value("t", "submitted_at"), pd.Timestamp)
    assert wh.max_value("t", "score") == 9
    assert wh.max_value("nope", "submitted_at") is None
    wh.upsert("e", df.iloc[:0], key=["response_id"])
    assert wh.max_value("e", "submitted_at") is None


def test_delete(wh: Warehouse) -> None:
    wh.upsert("t", responses(["r1", "r2", "r3", "r4"]), key=["response_id"])

    assert wh.delete("t", {"response_id": ["r1", "r3", "zz"]}) == 2
    assert sorted(wh.read("t")["response_id"]) == ["r2", "r4"]
    assert wh.delete("t", {"response_id": []}) == 0
    assert wh.delete("missing", {"response_id": ["r1"]}) == 0
    with pytest.raises(SchemaError, match="at least one condition"):
        wh.delete("t", {})

    many = [f"x{i}" for i in range(5000)] + ["r2"]
    assert wh.delete("t", {"response_id": many, "score": [5]}) == 1
    assert wh.count("t") == 1


def test_replace_table(wh: Warehouse) -> None:
    wh.upsert("topics", pd.DataFrame({"topic_id": [1, 2, 3], "label": ["a", "b", "c"]}), key=["topic_id"])

    new = pd.DataFrame({"topic_id": [7, 8, 7], "label": ["x", "y", "z"], "keywords": [["k"], [], ["l", "m"]]})
    wh.replace_table("topics", new, key=["topic_id"])

    out = by_key(wh.read("topics"), "topic_id")
    assert wh.columns("topics") == ["topic_id", "label", "keywords"]
    assert out["topic_id"].tolist() == [7, 8]
    assert out["label"].tolist() == ["z", "y"]  # duplicate key: the last row wins
    assert out["keywords"].tolist() == [["l", "m"], []]

    # An empty replacement keeps the column types (lists stay lists).
    wh.replace_table("topics", new.iloc[:0], key=["topic_id"])
    assert wh.count("topics") == 0
    wh.upsert("topics", new.iloc[:1], key=["topic_id"])
    assert wh.read("topics")["keywords"].tolist() == [["k"]]

    # A rejected replacement leaves the old content in place.
    with pytest.raises(SchemaError, match="missing values"):
        wh.replace_table(
            "topics", pd.DataFrame({"topic_id": [1, None], "label": ["p", "q"]}), key=["topic_id"]
        )
    assert wh.read("topics")["topic_id"].tolist() == [7]


def test_replace_table_without_key_keeps_duplicates(wh: Warehouse) -> None:
    wh.replace_table("scores", pd.DataFrame({"k": ["a", "a"], "v": [1, 2]}))
    assert wh.count("scores") == 2


# ---- embedding cache -------------------------------------------------------------------------------


def test_vectors_round_trip(wh: Warehouse) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 32)).astype(np.float32)
    hashes = [f"h{i:05d}" for i in range(2000)]

    assert wh.read_vectors("model-a", hashes) == {}  # no table yet
    assert wh.write_vectors("model-a", hashes, vectors) == 2000

    got = wh.read_vectors("model-a", hashes[::3] + ["absent-1", "absent-2"])
    assert set(got) == set(hashes[::3])
    for i in range(0, 2000, 3):
        assert got[hashes[i]].dtype == np.float32
        np.testing.assert_array_equal(got[hashes[i]], vectors[i])  # exact, bit for bit
    assert wh.read_vectors("model-b", hashes) == {}  # models never mix
    assert wh.read_vectors("model-a", []) == {}


def test_vectors_overwrite_and_duplicates(wh: Warehouse) -> None:
    wh.write_vectors("m", ["a", "b"], np.ones((2, 4), dtype=np.float32))
    update = np.array(
        [[2, 2, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4]], dtype=np.float64
    )  # float64 in: stored as float32

    assert wh.write_vectors("m", ["b", "c", "b"], update) == 2  # "b" twice: the last one wins

    got = wh.read_vectors("m", ["a", "b", "c"])
    np.testing.assert_array_equal(got["a"], np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(got["b"], np.full(4, 4, dtype=np.float32))
    np.testing.assert_array_equal(got["c"], np.full(4, 3, dtype=np.float32))
    assert wh.count("embedding_cache") == 3
    got["a"][0] = 99.0  # results are writable copies
    with pytest.raises(SchemaError, match="one row per hash"):
        wh.write_vectors("m", ["a"], np.ones((2, 4)))
    with pytest.raises(SchemaError, match="one row per hash"):
        wh.write_vectors("m", ["a"], np.ones(4))


def test_duckdb_stores_cached_vectors_uncompressed(tmp_path: Path) -> None:
    """Float32 vectors do not compress and DuckDB's attempt at each checkpoint made cache writes 2.3x slower:
    the cache's vector column is created uncompressed (the other columns keep DuckDB's codecs)."""
    target = tmp_path / "v.duckdb"
    vectors = np.random.default_rng(1).standard_normal((3000, 64)).astype(np.float32)
    hashes = [f"h{i:05d}" for i in range(3000)]
    with open_warehouse(target) as warehouse:
        warehouse.write_vectors("m", hashes, vectors)
        with warehouse._connection() as con:  # noqa: SLF001 (DuckDB's storage pragma)
            con.execute("CHECKPOINT")
            info = con.execute(
                "SELECT column_name, compression FROM pragma_storage_info('embedding_cache') "
                "WHERE segment_type <> 'VALIDITY'"
            ).fetchall()
        got = warehouse.read_vectors("m", hashes)
    by_column: dict[str, set[str]] = {}
    for column, compression in info:
        by_column.setdefault(column, set()).add(compression)
    assert by_column["vector"] == {"Uncompressed"}, by_column
    assert by_column["model_id"] != {"Uncompressed"}, by_column  # the rest is compressed as usual
    np.testing.assert_array_equal(np.stack([got[h] for h in hashes]), vectors)


def test_vectors_mixed_dims_across_models(wh: Warehouse) -> None:
    wh.write_vectors("small", ["x"], np.arange(4, dtype=np.float32)[None, :])
    wh.write_vectors("large", ["x"], np.arange(8, dtype=np.float32)[None, :])
    assert wh.read_vectors("small", ["x"])["x"].shape == (4,)
    assert wh.read_vectors("large", ["x"])["x"].shape == (8,)


# ---- identifiers, sql(), lifecycle -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad-name", "1abc", "a b", 'x"; DROP TABLE t; --', "", "tëst"])
def test_invalid_identifiers_rejected(wh: Warehouse, name: str) -> None:
    with pytest.raises(SchemaError, match="Invalid table name"):
        wh.upsert(name, pd.DataFrame({"k": ["a"]}), key=["k"])
    with pytest.raises(SchemaError, match="Invalid table name"):
        wh.read(name)
    with pytest.raises(SchemaError, match="Invalid table name"):
        wh.count(name)
    with pytest.raises(SchemaError, match="Invalid column name"):
        wh.upsert("t", pd.DataFrame({"k": ["a"], name: [1]}), key=["k"])
    assert wh.tables() == []


def test_key_problems_rejected(wh: Warehouse) -> None:
    with pytest.raises(SchemaError, match="missing column"):
        wh.upsert("t", pd.DataFrame({"k": ["a"]}), key=["response_id"])
    with pytest.raises(SchemaError, match="missing values"):
        wh.upsert("t", pd.DataFrame({"k": ["a", None]}), key=["k"])
    with pytest.raises(SchemaError, match="non-empty list"):
        wh.upsert("t", pd.DataFrame({"k": ["a"]}), key="k")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="duplicate column"):
        wh.upsert("t", pd.DataFrame([[1, 2]], columns=["k", "K"]), key=["k"])
    wh.upsert("t", pd.DataFrame({"k": ["a"]}), key=["k"])
    with pytest.raises(SchemaError, match="created with another key"):
        wh.upsert("t", pd.DataFrame({"other": ["a"]}), key=["other"])


def test_sql_is_read_only(wh: Warehouse) -> None:
    wh.upsert("t", responses(["r1", "r2", "r3"], score=7), key=["response_id"])

    out = wh.sql("SELECT response_id, score FROM t WHERE score >= :low ORDER BY response_id", {"low": 7})
    assert out["response_id"].tolist() == ["r1", "r2", "r3"]
    when = wh.sql(
        "SELECT COUNT(*) AS n FROM t WHERE submitted_at > :ts", {"ts": dt.datetime(2024, 1, 1, 0, 30)}
    )
    assert when["n"].iloc[0] == 2

    with pytest.raises(Exception):  # noqa: B017 - each database raises its own read-only error
        wh.sql("DELETE FROM t")
    assert wh.count("t") == 3


def test_closed_warehouse_raises(wh: Warehouse) -> None:
    wh.close()
    wh.close()  # twice is fine
    with pytest.raises(FeedbackError, match="closed"):
        wh.count("t")


def test_describe_and_url(wh: Warehouse) -> None:
    assert wh.describe() and wh.url
    assert repr(wh).startswith("<")


# ---- open_warehouse --------------------------------------------------------------------------------


def test_open_warehouse_duckdb_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    nested = tmp_path / "a" / "b" / "wh.duckdb"
    with open_warehouse(str(nested)) as wh:
        assert isinstance(wh, DuckDBWarehouse)
        assert wh.url == f"duckdb:///{nested}"
        wh.upsert("t", pd.DataFrame({"k": [1]}), key=["k"])
    assert nested.exists()
    with open_warehouse(nested) as wh:  # a Path works too, and the data is still there
        assert wh.count("t") == 1
    with open_warehouse(f"duckdb:///{nested}") as wh:  # duckdb:////abs/path
        assert wh.count("t") == 1

    monkeypatch.chdir(tmp_path)
    with open_warehouse("duckdb:///rel/wh.duckdb") as wh:  # duckdb:///relative/path
        assert wh.path == tmp_path / "rel" / "wh.duckdb"
    with open_warehouse(":memory:") as wh, open_warehouse("duckdb:///:memory:") as wh2:
        assert wh.path is None and wh2.url == "duckdb:///:memory:"
    with pytest.raises(ConfigError, match="names no file"):
        open_warehouse("duckdb://")


def test_open_warehouse_duckdb_schema(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "wh.duckdb", schema="feedback") as wh:
        wh.upsert("t", pd.DataFrame({"k": [1, 2]}), key=["k"])
        assert wh.sql("SELECT COUNT(*) AS n FROM t")["n"].iloc[0] == 2  # unqualified: schema is current
        assert wh.sql("SELECT COUNT(*) AS n FROM feedback.t")["n"].iloc[0] == 2
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert not wh.table_exists("t")  # it lives in schema "feedback", not "main"


def test_open_warehouse_postgres_url_uses_psycopg_and_hides_password() -> None:
    pytest.importorskip("psycopg")
    from pipeline.warehouse.sql_backend import SqlWarehouse

    # Nothing connects until the first query: no server needed here.
    for url in ["postgresql://user:s3cret@127.0.0.1:1/db", "postgres://user:s3cret@127.0.0.1:1/db"]:
        with open_warehouse(url) as wh:
            assert isinstance(wh, SqlWarehouse)
            assert wh.engine.dialect.driver == "psycopg"
            assert wh.url.startswith("postgresql+psycopg://user:")
            assert "s3cret" not in wh.url and "s3cret" not in wh.describe() and "s3cret" not in repr(wh)


def test_open_warehouse_unknown_scheme() -> None:
    with pytest.raises(ConfigError) as info:
        open_warehouse("nosuchdb://host/x")
    message = str(info.value)
    assert "nosuchdb" in message and "duckdb" in message and "postgresql" in message
    with pytest.raises(ConfigError):
        open_warehouse("")


def test_open_warehouse_missing_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'feedback-pipeline\[postgres\]'"):
        open_warehouse("postgresql://u:pw@127.0.0.1:1/db")
    monkeypatch.setitem(sys.modules, "pymysql", None)
    with pytest.raises(MissingDependencyError, match="pymysql"):
        open_warehouse("mysql+pymysql://u@127.0.0.1/db")


def test_import_is_lazy() -> None:
    code = (
        "import sys, pipeline.warehouse, pipeline.warehouse.base; "
        "print(sorted(m for m in ('duckdb', 'sqlalchemy', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_duckdb_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); print('ready', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(FeedbackError, match="one writing process"):
            open_warehouse(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits at end of input
        holder.wait(timeout=30)


def test_dollar_params_are_parsed_by_sqlalchemy() -> None:
    from pipeline.warehouse.duckdb_backend import dollar_params

    query = "SELECT '\\:x' AS s, CAST(v AS INT), v::INT, l[1:2] FROM t WHERE a = :a AND b=:b_2 OR c = :a"
    sql, values = dollar_params(query, {"a": 1, "b_2": "two"})
    assert sql == "SELECT ':x' AS s, CAST(v AS INT), v::INT, l[1:2] FROM t WHERE a = $1 AND b=$2 OR c = $1"
    assert values == [1, "two"]
    assert dollar_params("SELECT 1", None) == ("SELECT 1", None)
    with pytest.raises(FeedbackError, match="b_2"):
        dollar_params(query, {"a": 1})


def test_declared_tables_pack_and_unpack_segments(tmp_path: Path) -> None:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.tables import SEGMENTS_EXTRA, declare

    config = EnrichmentConfig.model_validate({"source": {"segments": ["channel"]}})
    with open_warehouse(tmp_path / "d.duckdb", config=config) as wh:
        frame = responses(["r1", "r2"]).assign(channel=["web", "app"], region=["eu", None])
        wh.upsert("survey_responses", frame, key=["response_id"])
        assert wh.columns("survey_responses")[-2:] == ["channel", SEGMENTS_EXTRA]
        back = by_key(wh.read("survey_responses"))
        assert back["channel"].tolist() == ["web", "app"]
        assert back["region"].iloc[0] == "eu" and pd.isna(back["region"].iloc[1])
        region = by_key(wh.read("survey_responses", ["response_id", "region"]))["region"]
        assert region.iloc[0] == "eu" and pd.isna(region.iloc[1])
        with pytest.raises(SchemaError, match="declared"):
            wh.upsert(
                "feedback_tags",
                pd.DataFrame({"response_id": ["r1"], "tag": ["a"], "x": [1]}),
                ["response_id", "tag"],
            )
    assert declare(config).get("survey_responses").types["channel"] == "text"


def test_small_cache_lowers_duckdbs_buffer_pool_within_the_block_and_restores_it(tmp_path: Path) -> None:
    from pipeline.warehouse import open_warehouse

    def limit(w) -> str:
        with w._connection() as con:  # noqa: SLF001
            return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    with open_warehouse(tmp_path / "c.duckdb") as w:
        w.upsert("t", pd.DataFrame({"k": range(1000), "v": np.arange(1000.0)}), key=["k"])
        usual = limit(w)
        with w.small_cache():
            small = limit(w)
            assert len(w.read("t")) == 1000  # reads work under the smaller pool
        assert limit(w) == usual and small != usual
        with pytest.raises(RuntimeError), w.small_cache():
            raise RuntimeError("the block fails")
        assert limit(w) == usual  # restored after a failure too
