"""What the dashboard reads and writes, without a browser: cached numbers that follow each new snapshot,
the answers' CSV export, and edits that go straight into a PostgreSQL warehouse.

The pages are rendered with Streamlit's AppTest (the same script ``feedback dashboard`` serves).
"""

from __future__ import annotations

import csv
import io
import uuid

import pandas as pd
import pytest

from tests.dashboard_helpers import XSS_ID, XSS_TEXT, build_warehouse

FORMULA = '=HYPERLINK("http://evil.example/x", "click me")'


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_csv_cells_a_spreadsheet_would_run_are_made_inert(tmp_path) -> None:
    from pipeline.analysis.csv_export import write_csv

    frame = pd.DataFrame(
        {
            "text": [FORMULA, "+1 555 0100", "-2 stars", "@SUM(A1:A9)", "\tx", "fine, thanks", None],
            "score": [-3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    before = frame.copy()
    rows = _rows(write_csv(frame))
    assert [r["text"] for r in rows] == [
        "'" + FORMULA, "'+1 555 0100", "'-2 stars", "'@SUM(A1:A9)", "'\tx", "fine, thanks", ""
    ]  # fmt: skip
    assert [r["score"] for r in rows] == [
        "-3.0",
        "1.0",
        "2.0",
        "3.0",
        "4.0",
        "5.0",
        "6.0",
    ]  # numbers as they are
    pd.testing.assert_frame_equal(frame, before)  # the input is not changed
    write_csv(frame, tmp_path / "sub" / "out.csv")
    assert _rows((tmp_path / "sub" / "out.csv").read_bytes()) == rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash_data")
    return {"cfg": build_warehouse(tmp, n=60), "tmp": tmp}


def _app(demo, monkeypatch, page: str):
    from streamlit.testing.v1 import AppTest

    from pipeline.config import load_config
    from pipeline.dashboard.server import APP, ENV_CONFIG, ENV_WAREHOUSE

    monkeypatch.setenv(ENV_WAREHOUSE, load_config(demo["cfg"]).warehouse)
    monkeypatch.setenv(ENV_CONFIG, str(demo["cfg"]))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["page"] = page
    return at


def _render(at) -> None:
    at.run()
    assert not at.exception, at.exception[0].value if at.exception else ""


def _responses(at) -> int:
    return int(next(m for m in at.metric if m.label == "Responses").value.replace(",", ""))


def test_numbers_follow_each_new_snapshot_and_the_export_is_spreadsheet_safe(demo, monkeypatch) -> None:
    from pipeline.analysis import Filters, answer_count, overview
    from pipeline.config import load_config
    from pipeline.dashboard.pages_work import answers_csv
    from pipeline.dashboard.snapshot import open_for_dashboard
    from pipeline.ingest.load import load_export
    from pipeline.runner import run_enrichment
    from pipeline.sample import generate_survey, write_export
    from pipeline.warehouse import open_warehouse

    config = load_config(demo["cfg"])
    at = _app(demo, monkeypatch, "overview")
    _render(at)
    with open_for_dashboard(config.warehouse) as wh:
        first = overview(wh, Filters(), config=config).n_responses
    assert _responses(at) == first
    _render(at)  # a rerun of the same view (from the cache) shows the same number
    assert _responses(at) == first

    # A run adds answers (one of them a spreadsheet formula) and publishes a new snapshot.
    new = generate_survey(n=25, seed=123)
    new["response_id"] = "N" + new["response_id"].astype(str)
    new.loc[0, "comment"] = FORMULA
    with open_warehouse(config.warehouse, config=config) as wh:
        load_export(write_export(new, demo["tmp"] / "new.parquet"), wh, config)
    run_enrichment(config)
    _render(at)  # the same session: the cached numbers of the old snapshot are not shown
    assert _responses(at) == first + 25

    with open_for_dashboard(config.warehouse) as wh:
        total = answer_count(wh, Filters(), config=config)
        rows = _rows(answers_csv(wh, Filters(), None, config=config))
        some = _rows(answers_csv(wh, Filters(), None, config=config, limit=7))
        hits = _rows(answers_csv(wh, Filters(), "HYPERLINK", config=config))
        none = _rows(answers_csv(wh, Filters(), "no answer says this", config=config))
    assert len(rows) == total and len({r["response_id"] for r in rows}) == total
    assert len(some) == 7 and none == []
    assert "customer_id" not in rows[0] and not any(k.startswith("customer") for k in rows[0])
    xss = next(r for r in rows if r["response_id"] == XSS_ID)
    assert "<script>" in xss["text"] and xss["text"].startswith(XSS_TEXT[:10])  # text, as it was written
    assert [r["text"][:2] for r in hits] == ["'="], hits  # shows as text in a spreadsheet, never runs


@pytest.mark.postgres
def test_on_postgresql_the_dashboard_writes_straight_into_the_warehouse(pg_url) -> None:
    import sqlalchemy as sa

    from pipeline.analysis import corrections, followups
    from pipeline.config import EnrichmentConfig
    from pipeline.dashboard.edits import EditStore
    from pipeline.dashboard.snapshot import open_for_dashboard
    from pipeline.dashboard.ui import LIVE_TTL_S, cache_key
    from pipeline.warehouse import open_warehouse
    from tests.test_analysis import load, tiny

    url = pg_url if "+psycopg" in pg_url else "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    name = f"dash_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = str(sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        config = EnrichmentConfig(
            warehouse=db, source={"segments": ["channel"], "customer_id": "customer_id"}
        )
        with open_warehouse(db, config=config) as wh:
            load(wh, tiny(), config)
        store = EditStore(config)
        assert store.side is None  # no side file: readers and writers do not block each other here
        store.set_followup("r7", status="contacted", owner="ana", note="called back", who="tester")
        store.correct_themes("r6", ["speed"], "tester")
        store.correct_sentiment("r6", "positive", "tester")
        assert store.pending_followups().empty and store.pending_corrections().empty
        with open_for_dashboard(db) as wh:  # the live warehouse, read at once by every page
            queue = followups(wh, config=config).set_index("response_id")
            fixed = corrections(wh, ["r6"], config=config)
        assert (queue.loc["r7", "status"], queue.loc["r7", "owner"]) == ("contacted", "ana")
        assert queue.loc["r7", "note"] == "called back" and queue.loc["r7", "customer_id"] == "c7"
        assert queue.loc["r7", "reason"] == "manual" and queue.loc["r7", "score"] == 5.0  # no rule chose r7
        assert set(fixed["kind"]) >= {"themes", "sentiment"}, fixed
        # numbers of a live warehouse are cached for a minute at most
        assert cache_key((db,), db)[-1] == pytest.approx(__import__("time").time() // LIVE_TTL_S, abs=1)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_followup_opened_on_the_side_file_is_completed_from_the_answer_when_merged(tmp_path) -> None:
    from pipeline.analysis import followups
    from pipeline.analysis.corrections import merge_edits
    from pipeline.analysis.followups import set_followup
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse import open_warehouse
    from tests.test_analysis import load, tiny

    config = EnrichmentConfig(source={"segments": ["channel"], "customer_id": "customer_id"})
    with (
        open_warehouse(tmp_path / "wh.duckdb", config=config) as wh,
        open_warehouse(tmp_path / "side.duckdb", config=config) as side,
    ):
        load(wh, tiny(), config)
        set_followup(side, "r3", who="ana", status="contacted", note="asked for a review", config=config)
        bare = followups(side, config=config).iloc[0]
        assert bare["customer_id"] is None and bare["reason"] is None  # the side file has no answers
        merge_edits(side, wh, config=config)
        got = followups(wh, config=config).set_index("response_id").loc["r3"]
    assert (got["customer_id"], got["reason"], got["score"], got["status"]) == (
        "c3",
        "manual",
        9.0,
        "contacted",
    )
    assert got["note"] == "asked for a review" and got["updated_by"] == "ana"


def test_the_snapshot_joins_on_an_integer_key_and_every_number_stays_the_same(tmp_path) -> None:
    """The snapshot numbers each answer (ROW_KEY) and the analysis joins themes on it there; on the
    warehouse it joins on response_id. Every result must be the same both ways, human corrections
    (themes replaced, themes removed, sentiment) included."""
    from pipeline.analysis import (
        Filters,
        answers,
        correct_sentiment,
        correct_themes,
        drivers,
        emerging,
        overview,
        segment_theme_crosstab,
        theme_impact,
        theme_trend,
    )
    from pipeline.analysis.filters import ROW_KEY, Scope
    from pipeline.analysis.followups import candidates
    from pipeline.config import load_config
    from pipeline.dashboard.snapshot import open_for_dashboard, publish_snapshot
    from pipeline.warehouse import open_warehouse

    config = load_config(build_warehouse(tmp_path, n=150))
    with open_warehouse(config.warehouse, config=config) as wh:
        tags = wh.read(config.tables.tags)
        ids = sorted(tags["response_id"].astype(str).unique())
        theme = str(tags["tag"].value_counts().index[0])
        correct_themes(wh, ids[0], [theme, "a theme only a person used"], who="tester", config=config)
        correct_themes(wh, ids[1], [], who="tester", config=config)
        correct_sentiment(wh, ids[2], "positive", who="tester", config=config)
        publish_snapshot(wh, config)
    slices = [
        Filters(),
        Filters(themes=[theme]),
        Filters(segments={"channel": ["app"]}, sentiments=["negative"]),
    ]

    def results(wh) -> list:
        out = []
        for f in slices:
            out += [
                theme_impact(wh, f, config=config),
                theme_impact(wh, f, level="parent", config=config),
                theme_trend(wh, f, "W", config=config),
                drivers(wh, f, config=config),
                drivers(wh, f, level="parent", config=config),
                segment_theme_crosstab(wh, "channel", f, config=config),
                answers(wh, f, limit=20, config=config),
                overview(wh, f, config=config),
            ]
        return [*out, candidates(wh, config=config), emerging(wh, config=config, created_at=pd.Timestamp(0))]

    with open_for_dashboard(config.warehouse) as snap, open_warehouse(config.warehouse, config=config) as wh:
        assert Scope.of(snap, config).key == ROW_KEY
        assert Scope.of(wh, config).key == "response_id"
        assert ROW_KEY not in Scope.of(snap, config).segment_columns()
        keyed, plain = results(snap), results(wh)
    impact = plain[0].set_index("tag")
    assert impact.loc["a theme only a person used", "human_share"] == 1.0  # the human branch counted
    assert len(plain[0]) > 3 and len(plain[2]) > 0 and len(plain[6]) == 20
    for a, b in zip(keyed, plain, strict=True):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            assert a == b
