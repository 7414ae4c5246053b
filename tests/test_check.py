"""``pipeline.check`` / ``feedback check``: the warehouse invariants, on DuckDB, SQLite and PostgreSQL.

Each test builds a small consistent warehouse with ``wh.upsert`` (no models), breaks one invariant and
asserts that exactly that violation is reported, with its count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.check import check_warehouse, require_consistent
from pipeline.check.checker import DATA_INVARIANTS, INVARIANTS, CheckResult, Violation
from pipeline.cli.check import add_check_commands, cmd_check
from pipeline.config import EnrichmentConfig, TablesConfig
from pipeline.errors import ConfigError, FeedbackError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from pipeline.warehouse.duckdb_backend import DuckDBWarehouse
from pipeline.warehouse.lock import run_lock
from pipeline.warehouse.reading import open_for_reading
from tests.conftest import pg_schema

CONFIG = EnrichmentConfig()
T = CONFIG.tables
RUN_START = pd.Timestamp("2024-05-01 02:00:00")


@pytest.fixture(autouse=True)
def _plain_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain NOT EXISTS count: these tests do not depend on pipeline.ingest.pending (another module)."""
    monkeypatch.setitem(sys.modules, "pipeline.ingest.pending", None)


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["run_id", "status", "started_at", "rows_in", "rows_enriched", "rows_quarantined"]
    )
    for column in ("rows_in", "rows_enriched", "rows_quarantined"):
        frame[column] = frame[column].astype("Int64")
    frame["started_at"] = pd.to_datetime(frame["started_at"]).astype("datetime64[us]")
    return frame


def build(wh: Warehouse, tables: TablesConfig = T) -> None:
    """A consistent warehouse: r1-r4 enriched (r3 a non-answer), r5 quarantined, one balanced run."""
    ids = ["r1", "r2", "r3", "r4", "r5"]
    wh.upsert(
        tables.source,
        pd.DataFrame(
            {
                "response_id": ids,
                "survey_type": "nps",
                "score": [9, 3, 7, 10, 5],
                "comment": ["Great. Fast.", "Slow", "n/a", "Love it", ""],
                "submitted_at": pd.date_range("2024-04-01", periods=5, freq="D").astype("datetime64[us]"),
            }
        ),
        key=["response_id"],
    )
    wh.upsert(
        tables.enriched,
        pd.DataFrame(
            {
                "response_id": ["r1", "r2", "r3", "r4"],
                "is_non_answer": [False, False, True, False],
                # A non-answer keeps its sentence count but has no sentence rows.
                "n_sentences": [2, 1, 1, 1],
                "tags": [["speed", "quality"], [], [], ["quality"]],
                "run_id": "run-1",
            }
        ),
        key=["response_id"],
    )
    wh.upsert(
        tables.sentences,
        pd.DataFrame({"response_id": ["r1", "r1", "r2", "r4"], "sentence_id": [0, 1, 0, 0]}),
        key=["response_id", "sentence_id"],
    )
    wh.upsert(
        tables.tags,
        pd.DataFrame({"response_id": ["r1", "r1", "r4"], "tag": ["speed", "quality", "quality"]}),
        key=["response_id", "tag"],
    )
    wh.upsert(
        tables.quarantine,
        pd.DataFrame({"response_id": ["r5"], "reason": ["empty_comment"]}),
        key=["response_id"],
    )
    wh.upsert(
        tables.runs,
        runs_frame([{"run_id": "run-1", "status": "success", "started_at": RUN_START, "rows_in": 5,
                     "rows_enriched": 4, "rows_quarantined": 1}]),
        key=["run_id"],
    )  # fmt: skip


BACKENDS = ["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
FILES = {"duckdb": "wh.duckdb", "sqlite": "wh.db"}


def target(backend: str, path: Path) -> str:
    return str(path) if backend == "duckdb" else f"sqlite:///{path}"


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The consistent warehouse, built once per file backend (tests copy the file: faster than upserts)."""
    root = tmp_path_factory.mktemp("templates")
    for backend, name in FILES.items():
        with open_warehouse(target(backend, root / name)) as warehouse:
            build(warehouse)
    return {backend: root / name for backend, name in FILES.items()}


@contextmanager
def opened(request: pytest.FixtureRequest, tmp_path: Path, consistent: bool) -> Iterator[Warehouse]:
    backend = request.param
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        with pg_schema(url, "check") as schema, open_warehouse(url, schema=schema) as warehouse:
            if consistent:
                build(warehouse)
            yield warehouse
        return
    path = tmp_path / FILES[backend]
    if consistent:
        shutil.copyfile(request.getfixturevalue("templates")[backend], path)
    with open_warehouse(target(backend, path)) as warehouse:
        yield warehouse


@pytest.fixture(params=BACKENDS)
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """The consistent warehouse of :func:`build` on each backend."""
    with opened(request, tmp_path, consistent=True) as warehouse:
        yield warehouse


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse on each backend."""
    with opened(request, tmp_path, consistent=False) as warehouse:
        yield warehouse


def found(result: CheckResult) -> dict[str, int]:
    return {v.invariant: v.count for v in result.violations}


def test_consistent_warehouse_passes(wh: Warehouse) -> None:
    result = check_warehouse(wh, CONFIG)
    assert result.ok, result.violations
    assert result.skipped == []
    assert result.counts == {
        "source": 5,
        "enriched": 4,
        "quarantined": 1,
        "tags": 3,
        "sentences": 4,
        "runs": 1,
        "pending": 0,
    }
    assert result.to_dict() == {"ok": True, "counts": result.counts, "violations": [], "skipped": []}


def test_empty_warehouse_is_consistent(empty: Warehouse) -> None:
    """Missing tables count as empty."""
    result = check_warehouse(empty, CONFIG)
    assert result.ok and result.skipped == []
    assert set(result.counts.values()) == {0}


def add(wh: Warehouse, table: str, **columns: list) -> None:
    key = {T.tags: ["response_id", "tag"], T.sentences: ["response_id", "sentence_id"]}.get(table)
    wh.upsert(table, pd.DataFrame(columns), key=key or ["response_id"])


def break_sentences_fewer(wh: Warehouse) -> None:
    wh.delete(T.sentences, {"response_id": ["r1"], "sentence_id": [1]})


def break_sentences_more(wh: Warehouse) -> None:
    add(wh, T.sentences, response_id=["r2", "r2"], sentence_id=[1, 2])


def break_tags_fewer(wh: Warehouse) -> None:
    wh.delete(T.tags, {"response_id": ["r4"]})


def break_tags_more(wh: Warehouse) -> None:
    add(wh, T.tags, response_id=["r2", "r3"], tag=["price", "price"])


def break_orphan_tags(wh: Warehouse) -> None:
    add(wh, T.tags, response_id=["r9", "r9", "r8"], tag=["speed", "price", "price"])


def break_orphan_sentences(wh: Warehouse) -> None:
    add(wh, T.sentences, response_id=["r9"], sentence_id=[0])


def break_orphan_enriched(wh: Warehouse) -> None:
    add(wh, T.enriched, response_id=["r9"], is_non_answer=[True], n_sentences=[0], tags=[[]])


def break_orphan_quarantined(wh: Warehouse) -> None:
    add(wh, T.quarantine, response_id=["r8", "r9"], reason=["x", "y"])


def break_enriched_and_quarantined(wh: Warehouse) -> None:
    add(wh, T.quarantine, response_id=["r1"], reason=["enrichment_error"])


def break_pending(wh: Warehouse) -> None:
    add(
        wh,
        T.source,
        response_id=["r6", "r7"],
        survey_type=["nps", "nps"],
        score=[1, 2],
        comment=["a", "b"],
        submitted_at=pd.to_datetime(["2024-04-10", "2024-04-11"]).astype("datetime64[us]"),
    )


def break_run_unbalanced(wh: Warehouse) -> None:
    later = RUN_START + pd.Timedelta(days=1)
    wh.upsert(
        T.runs,
        runs_frame(
            [
                {"run_id": "run-2", "status": "success", "started_at": later, "rows_in": 3,
                 "rows_enriched": 1, "rows_quarantined": 1},
                {"run_id": "run-3", "status": "failed", "started_at": later, "rows_in": 4,
                 "rows_enriched": 1, "rows_quarantined": 0},
                # Failed runs (with or without counts) and abandoned ones are not held to the balance:
                # they record how far they got.
                {"run_id": "run-4", "status": "failed", "started_at": later, "rows_in": None,
                 "rows_enriched": None, "rows_quarantined": None},
                {"run_id": "run-5", "status": "abandoned", "started_at": later, "rows_in": 9,
                 "rows_enriched": 0, "rows_quarantined": 0},
            ]
        ),
        key=["run_id"],
    )  # fmt: skip


def break_run_dead(wh: Warehouse) -> None:
    wh.upsert(
        T.runs,
        runs_frame([{"run_id": "run-0", "status": "running", "started_at": RUN_START - pd.Timedelta(days=1),
                     "rows_in": None, "rows_enriched": None, "rows_quarantined": None}]),
        key=["run_id"],
    )  # fmt: skip


BREAKS = {
    "sentences_fewer": (break_sentences_fewer, "sentences_missing", 1, "r1 (2 expected, 1 found)"),
    "sentences_more": (break_sentences_more, "sentences_missing", 1, "r2 (1 expected, 3 found)"),
    "tags_fewer": (break_tags_fewer, "tags_missing", 1, "r4 (1 expected, 0 found)"),
    "tags_more": (break_tags_more, "tags_missing", 2, "r2 (0 expected, 1 found)"),
    "orphan_tags": (break_orphan_tags, "orphan_tags", 3, "e.g. r8, r9"),
    "orphan_sentences": (break_orphan_sentences, "orphan_sentences", 1, "e.g. r9"),
    "orphan_enriched": (break_orphan_enriched, "orphan_enriched", 1, "e.g. r9"),
    "orphan_quarantined": (break_orphan_quarantined, "orphan_quarantined", 2, "e.g. r8, r9"),
    "enriched_and_quarantined": (break_enriched_and_quarantined, "enriched_and_quarantined", 1, "e.g. r1"),
    "pending": (break_pending, "pending", 2, "e.g. r6, r7"),
    "run_unbalanced": (break_run_unbalanced, "run_unbalanced", 1, "run-2 (success: 3 in, 1 enriched"),
    "run_dead": (break_run_dead, "run_dead", 1, "run run-0 was left running"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_broken_invariant_is_reported_alone(wh: Warehouse, case: str) -> None:
    breaker, invariant, count, shown = BREAKS[case]
    breaker(wh)
    result = check_warehouse(wh, CONFIG)
    assert found(result) == {invariant: count}
    assert result.skipped == []
    assert not result.ok
    (violation,) = result.violations
    assert shown in violation.message
    assert "\n" not in violation.message
    assert "`feedback " in violation.message or "DELETE FROM" in violation.message


def test_every_invariant_has_a_case() -> None:
    assert {case[1] for case in BREAKS.values()} == set(INVARIANTS)


def test_several_violations_in_invariant_order(wh: Warehouse) -> None:
    break_pending(wh)
    break_tags_fewer(wh)
    break_orphan_sentences(wh)
    result = check_warehouse(wh, CONFIG)
    assert [v.invariant for v in result.violations] == ["tags_missing", "orphan_sentences", "pending"]
    assert result.counts["pending"] == 2


def test_examples_are_capped(wh: Warehouse) -> None:
    ids = [f"x{i:02d}" for i in range(12)]
    add(wh, T.tags, response_id=ids, tag=["a"] * len(ids))
    (violation,) = check_warehouse(wh, CONFIG).violations
    assert violation.count == 12
    assert "x00, x01, x02, x03, x04, ..." in violation.message and "x05" not in violation.message


def hold_lease(wh: Warehouse) -> None:
    """A lease row of a live process on this host (this test's), as a run in another process writes it."""
    now = pd.Timestamp.now("UTC").tz_localize(None).as_unit("us")
    wh.upsert(
        T.lock,
        pd.DataFrame(
            {
                "name": ["feedback-pipeline"],
                "holder": ["run-9 pid elsewhere"],
                "host": [socket.gethostname()],
                "pid": [os.getpid()],
                "acquired_at": [now],
                "heartbeat_at": [now],
                "expires_at": [now + pd.Timedelta(minutes=5)],
            }
        ),
        key=["name"],
    )


def test_a_running_record_without_a_lock_holder_is_a_dead_run(wh: Warehouse) -> None:
    started = RUN_START + pd.Timedelta(days=2)
    wh.upsert(
        T.runs,
        runs_frame([{"run_id": "run-9", "status": "running", "started_at": started, "rows_in": None,
                     "rows_enriched": None, "rows_quarantined": None}]),
        key=["run_id"],
    )  # fmt: skip
    result = check_warehouse(wh, CONFIG)
    assert found(result) == {"run_dead": 1} and result.skipped == []


def test_live_run_skips_the_data_invariants(wh: Warehouse) -> None:
    break_sentences_fewer(wh)
    break_pending(wh)  # mid-write: not reported while the run is live
    break_run_unbalanced(wh)  # finished runs are still checked
    started = RUN_START + pd.Timedelta(days=2)
    wh.upsert(
        T.runs,
        runs_frame([{"run_id": "run-9", "status": "running", "started_at": started, "rows_in": None,
                     "rows_enriched": None, "rows_quarantined": None}]),
        key=["run_id"],
    )  # fmt: skip
    with run_lock(wh, holder="run-9 pid 1 on elsewhere", table=T.lock):  # the run is alive: it holds the lock
        result = check_warehouse(wh, CONFIG)
    assert found(result) == {"run_unbalanced": 1}
    assert [s.split(":", 1)[0] for s in result.skipped] == list(DATA_INVARIANTS)
    assert all("run run-9 is still running (started 2024-05-03 02:00:00 UTC)" in s for s in result.skipped)
    assert "pending" not in result.counts


def test_dead_run_does_not_skip(wh: Warehouse) -> None:
    break_run_dead(wh)
    break_sentences_fewer(wh)
    result = check_warehouse(wh, CONFIG)
    assert found(result) == {"sentences_missing": 1, "run_dead": 1}
    assert result.skipped == []
    assert result.violations[-1].message == (
        "run run-0 was left running: it was killed; the next `feedback enrich` marks it abandoned and "
        "completes its rows"
    )


def test_missing_tables_count_as_empty(empty: Warehouse) -> None:
    wh = empty
    # Source only: every row is pending; enriched rows without a source are orphans.
    add(wh, T.source, response_id=["a", "b"], survey_type=["nps"] * 2, score=[1, 2], comment=["x", "y"])
    assert found(check_warehouse(wh, CONFIG)) == {"pending": 2}
    add(wh, T.enriched, response_id=["a", "z"], is_non_answer=[False, False], n_sentences=[1, 0],
        tags=[["t"], []])  # fmt: skip
    # No sentences / tags tables: a's sentence and tag are missing; z is no source row.
    assert found(check_warehouse(wh, CONFIG)) == {
        "sentences_missing": 1,
        "tags_missing": 1,
        "orphan_enriched": 1,
        "pending": 1,
    }


def test_missing_column_skips_its_invariant(empty: Warehouse) -> None:
    add(empty, T.enriched, response_id=["a"], is_non_answer=[False], n_sentences=[0])  # no tags column
    result = check_warehouse(empty, CONFIG)
    assert found(result) == {"orphan_enriched": 1}
    assert result.skipped == [
        "tags_missing: table feedback_enriched has no column(s) ['tags'] (found ['response_id', "
        "'is_non_answer', 'n_sentences'])"
    ]


def test_pending_callable_and_default_module(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []

    def count(w: Warehouse, config: EnrichmentConfig) -> int:
        calls.append((w, config))
        return 3

    result = check_warehouse(wh, CONFIG, pending=count)
    assert found(result) == {"pending": 3} and calls == [(wh, CONFIG)]
    assert "changed since they were enriched" in result.violations[0].message
    # Without the argument, pipeline.ingest.pending.count_pending is used when it can be imported.
    monkeypatch.setitem(sys.modules, "pipeline.ingest.pending", types.SimpleNamespace(count_pending=count))
    assert found(check_warehouse(wh, CONFIG)) == {"pending": 3}


def test_configured_table_names(tmp_path: Path) -> None:
    tables = TablesConfig(
        source="src",
        enriched="enr",
        tags="tg",
        sentences="sen",
        quarantine="quar",
        runs="runs_log",
    )
    config = EnrichmentConfig(tables=tables)
    with open_warehouse(tmp_path / "custom.duckdb") as wh:
        build(wh, tables)
        assert check_warehouse(wh, config).ok
        assert check_warehouse(wh, CONFIG).counts["source"] == 0  # the default names are not there
        wh.upsert("tg", pd.DataFrame({"response_id": ["r9"], "tag": ["a"]}), key=["response_id", "tag"])
        (violation,) = check_warehouse(wh, config).violations
    assert violation.invariant == "orphan_tags" and "in tg" in violation.message


def test_require_consistent(templates: dict[str, Path], tmp_path: Path) -> None:
    with open_for_reading(made(templates, tmp_path)) as wh:
        require_consistent(wh, CONFIG)
    with open_warehouse(made(templates, tmp_path)) as wh:
        break_tags_fewer(wh)
        break_orphan_sentences(wh)
        with pytest.raises(FeedbackError) as info:
            require_consistent(wh, CONFIG)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert "tags" in lines[0] and "r9" in lines[1]
    assert lines[2] == "run `feedback check` for details"


# ---- opening and the CLI ----------------------------------------------------------------------------


def made(templates: dict[str, Path], tmp_path: Path, *breakers: Callable[[Warehouse], None]) -> Path:
    path = tmp_path / "wh.duckdb"
    shutil.copyfile(templates["duckdb"], path)
    with open_warehouse(path) as wh:
        for breaker in breakers:
            breaker(wh)
    return path


def test_open_for_reading_opens_duckdb_read_only(templates: dict[str, Path], tmp_path: Path) -> None:
    path = made(templates, tmp_path)
    for target in (str(path), path, f"duckdb:///{path}"):
        with open_for_reading(target) as wh:
            assert isinstance(wh, DuckDBWarehouse) and wh._read_only
            assert check_warehouse(wh, CONFIG).ok
            with pytest.raises(duckdb.Error):  # read-only: DuckDB refuses the write
                wh.upsert("x", pd.DataFrame({"a": [1]}), key=["a"])
    missing = tmp_path / "nope" / "wh.duckdb"
    with pytest.raises(ConfigError, match="No DuckDB warehouse file"):
        open_for_reading(missing)
    assert not missing.parent.exists()  # a check creates nothing
    with open_for_reading(f"sqlite:///{tmp_path / 'x.db'}") as wh:
        assert not isinstance(wh, DuckDBWarehouse)


def test_cli_ok(templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = made(templates, tmp_path)
    out = tmp_path / "out" / "check.json"
    args = argparse.Namespace(config=None, warehouse=str(path), json=str(out))
    assert cmd_check(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == (
        "ok: source=5 enriched=4 quarantined=1 tags=3 sentences=4 runs=1 pending=0"
    )
    assert captured.err == ""
    assert json.loads(out.read_text(encoding="utf-8"))["ok"] is True


def test_cli_broken(templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = made(templates, tmp_path, break_sentences_fewer, break_orphan_tags, break_run_dead)
    parser = argparse.ArgumentParser(prog="feedback")
    add_check_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "check.json"
    args = parser.parse_args(["check", "--warehouse", str(path), "--json", str(out)])
    assert args.func(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 3 and all(line.startswith("broken: ") for line in lines)
    assert captured.out == ""
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["ok"] is False
    assert [(v["invariant"], v["count"]) for v in data["violations"]] == [
        ("sentences_missing", 1),
        ("orphan_tags", 3),
        ("run_dead", 1),
    ]
    assert Violation(**data["violations"][0]).invariant == "sentences_missing"


def test_cli_prints_skipped(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = made(templates, tmp_path)
    with open_warehouse(path) as wh:
        wh.upsert(
            T.runs,
            runs_frame([{"run_id": "run-9", "status": "running", "started_at": RUN_START + pd.Timedelta(days=1),
                         "rows_in": None, "rows_enriched": None, "rows_quarantined": None}]),
            key=["run_id"],
        )  # fmt: skip
        hold_lease(wh)  # the run's process is alive (this one) and holds the lease
    assert cmd_check(argparse.Namespace(config=None, warehouse=str(path), json=None)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(DATA_INVARIANTS) + 1
    assert lines[0].startswith("skipped: sentences_missing: run run-9 is still running")
    assert lines[-1].startswith("ok: source=5")
