"""The analysis layer in the warehouse: hand-checked numbers, filters, corrections and the follow-up queue.

Every test runs on DuckDB and on PostgreSQL (the latter skips unless ``FEEDBACK_TEST_PG_URL`` is set:
``source .ci/postgres.sh && pg_start``): the analysis SQL is one text for both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import analysis as an
from pipeline.config import EnrichmentConfig
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from tests.conftest import pg_schema

SCORES = [10, 10, 10, 9, 8, 7, 6, 5, 3, 0]  # 4 promoters, 2 passives, 4 detractors: NPS 0
CONFIG = EnrichmentConfig(source={"segments": ["channel"]})


def tiny() -> pd.DataFrame:
    """Ten NPS responses; "billing" sits only on the answered detractors r6, r7, r8; r9 is a non-answer."""
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(10)],
            "survey_type": "nps",
            "score": [float(s) for s in SCORES],
            "submitted_at": pd.date_range("2024-01-01", periods=10, freq="D"),
            "language": ["en"] * 6 + ["de"] * 3 + [None],
            "is_non_answer": [False] * 9 + [True],
            "sentiment_label": ["positive"] * 4 + ["neutral"] * 2 + ["negative"] * 3 + [None],
            "sentiment_score": [0.8, 0.7, 0.6, 0.5, 0.1, 0.0, -0.5, -0.6, -0.9, np.nan],
            "topic_id": [0, 0, 0, 0, 1, 1, 2, 2, 2, -1],
            "topic_label": ["fast"] * 4 + ["ok"] * 2 + ["price"] * 3 + [None],
            "tags": [
                ["speed"],
                ["speed"],
                [],
                ["speed"],
                [],
                [],
                ["billing"],
                ["billing", "speed"],
                ["billing"],
                [],
            ],
            "text_redacted": [f"answer {i}" for i in range(10)],
            "channel": ["web"] * 5 + ["app"] * 5,
            "customer_id": [f"c{i}" for i in range(10)],
        }
    )


def load(wh, df: pd.DataFrame, config: EnrichmentConfig = CONFIG) -> None:
    """Write enriched rows and their long-form tags (billing's parent: money)."""
    wh.upsert(config.tables.enriched, df, key=["response_id"])
    long = df[["response_id", "tags"]].explode("tags").dropna().rename(columns={"tags": "tag"})
    long["parent_tag"] = long["tag"].map({"billing": "money"}).astype(object)
    wh.upsert(config.tables.tags, long, key=["response_id", "tag"])


BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@contextmanager
def open_test_warehouse(
    request: pytest.FixtureRequest, path, config: EnrichmentConfig = CONFIG
) -> Iterator[Warehouse]:
    """A fresh warehouse of the test's backend: a DuckDB file at ``path``, or a PostgreSQL schema."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        with pg_schema(url, "an") as schema, open_warehouse(url, schema=schema, config=config) as w:
            yield w
        return
    with open_warehouse(path, config=config) as w:
        yield w


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """The backend of a test that opens its own warehouses (pass it to :func:`open_test_warehouse`)."""
    return request


@pytest.fixture
def wh(kind, tmp_path):
    with open_test_warehouse(kind, tmp_path / "a.duckdb") as w:
        load(w, tiny())
        yield w


def test_score_summary_by_hand(wh) -> None:
    s = an.score_summary(wh, config=CONFIG)
    assert s.survey_type == "nps" and s.n == 10 and s.score == 0.0
    assert s.promoter_share == 40.0 and s.detractor_share == 40.0 and s.small_sample
    # values +100 x4, -100 x4, 0 x2: sample variance 8000/9; normal interval
    se = math.sqrt(80000 / 9 / 10)
    assert s.se == pytest.approx(se) and s.high == pytest.approx(1.959964 * se, rel=1e-5)
    assert s.change is None  # no period: nothing to compare with


def test_filters_period_segment_language_theme(wh) -> None:
    f = an.Filters(start=date(2024, 1, 6), end=date(2024, 1, 10))
    s = an.score_summary(wh, f, config=CONFIG)
    assert s.n == 5 and s.score == pytest.approx(-80.0)  # 7, 6, 5, 3, 0
    assert s.previous is not None and s.previous.n == 5 and s.previous.value == pytest.approx(80.0)
    assert s.change.delta == pytest.approx(-160.0) and 0 < s.change.p_value < 0.05
    assert an.score_summary(wh, an.Filters(segments={"channel": ["web"]}), config=CONFIG).n == 5
    assert an.overview(wh, an.Filters(languages=["de"]), config=CONFIG).n_responses == 3
    assert an.score_summary(wh, an.Filters(themes=["money"]), config=CONFIG).n == 3  # parent filter
    assert an.overview(wh, an.Filters(sentiments=["negative"]), config=CONFIG).n_responses == 3
    assert an.overview(wh, an.Filters(topics=[0]), config=CONFIG).n_responses == 4
    with pytest.raises(Exception, match="segment column"):
        an.score_summary(wh, an.Filters(segments={"plan": ["x"]}), config=CONFIG)


def test_theme_impact_by_hand_with_parents(wh) -> None:
    ti = an.theme_impact(wh, config=CONFIG).set_index("tag")
    # without billing: 4 promoters, 2 passives, 1 detractor of 7 -> 300/7; NPS 0 -> impact -300/7
    assert ti.loc["billing", "impact"] == pytest.approx(-300 / 7)
    assert ti.loc["billing", "score_with"] == -100 and ti.loc["billing", "volume"] == 3
    assert ti.loc["billing", "parent_tag"] == "money" and ti.loc["billing", "detractor_share"] == 1.0
    assert ti.loc["billing", "share"] == pytest.approx(3 / 9) and bool(ti.loc["billing", "small_sample"])
    assert ti.loc["billing", "impact_low"] <= ti.loc["billing", "impact"] <= ti.loc["billing", "impact_high"]
    parents = an.theme_impact(wh, level="parent", config=CONFIG).set_index("tag")
    assert parents.loc["money", "impact"] == pytest.approx(-300 / 7) and "billing" not in parents.index


def test_trends_segments_and_answers(wh) -> None:
    trend = an.score_trend(wh, freq="W", config=CONFIG)
    assert trend["n"].sum() == 10 and list(trend.columns) == an.scores.SCORE_TREND_COLUMNS
    tt = an.theme_trend(wh, freq="W", config=CONFIG)
    assert tt.groupby("tag")["count"].sum().to_dict() == {"billing": 3, "speed": 4}
    seg = an.segment_scores(wh, "channel", config=CONFIG).set_index("value")
    assert seg.loc["web", "score"] == pytest.approx(80.0) and seg.loc["app", "score"] == pytest.approx(-80.0)
    cross = an.segment_theme_crosstab(wh, "channel", config=CONFIG)
    cell = cross[(cross["value"] == "app") & (cross["tag"] == "billing")].iloc[0]
    assert cell["n"] == 4 and cell["count"] == 3 and cell["share_rest"] == 0.0
    page = an.answers(wh, an.Filters(themes=["billing"]), limit=2, config=CONFIG)
    assert page["response_id"].tolist() == ["r8", "r7"] and page["themes"].iloc[1] == ["billing", "speed"]
    assert an.answer_count(wh, search="ANSWER 8", config=CONFIG) == 1


def test_empty_and_missing_tables_do_not_crash(kind, tmp_path) -> None:
    with open_test_warehouse(kind, tmp_path / "e.duckdb") as w:
        assert math.isnan(an.score_summary(w, config=CONFIG).score)
        assert an.theme_impact(w, config=CONFIG).empty and an.drivers(w, config=CONFIG).empty
        assert an.overview(w, config=CONFIG).n_responses == 0 and an.followups(w, config=CONFIG).empty
        load(w, tiny().head(0))
        assert an.score_summary(w, config=CONFIG).n == 0 and an.score_trend(w, config=CONFIG).empty


def test_corrections_show_in_the_analysis_survive_reenrichment_and_reach_the_retrain(wh) -> None:
    from pipeline.tagging.data import read_label_table

    an.correct_themes(wh, "r0", ["billing"], who="ann", config=CONFIG)  # a promoter: billing gets better
    an.correct_sentiment(wh, "r6", "positive", who="ann", note="sarcasm misread", config=CONFIG)
    load(wh, tiny())  # the nightly run re-enriches every answer: model tags and sentiment rewritten
    ti = an.theme_impact(wh, config=CONFIG).set_index("tag")
    assert ti.loc["billing", "volume"] == 4 and ti.loc["speed", "volume"] == 3  # r0 lost its model "speed"
    assert ti.loc["billing", "human_share"] == 0.25
    assert an.overview(wh, config=CONFIG).sentiment == {"positive": 5, "neutral": 2, "negative": 2}
    page = an.answers(wh, an.Filters(sentiments=["positive"], themes=["billing"]), config=CONFIG)
    assert (
        set(page["response_id"]) == {"r0", "r6"}
        and page.set_index("response_id").loc["r6", "sentiment_human"]
    )
    labels = read_label_table(wh, CONFIG.tables.tag_labels, CONFIG.tables.enriched)
    assert labels.set_index("id").loc["r0", "tags"] == ["billing"]
    assert labels.set_index("id").loc["r0", "text"] == "answer 0"
    from pipeline.sentiment.retrain import stored_scores

    targets = stored_scores(wh, CONFIG).set_index("text")["score"]
    assert (
        targets["answer 6"] == 10.0 and targets["answer 7"] == 5.0
    )  # r6 corrected to positive; r7 as scored
    got = an.corrections(wh, config=CONFIG)
    assert set(zip(got["response_id"], got["kind"], strict=True)) == {("r0", "themes"), ("r6", "sentiment")}


def test_followups_nightly_adds_candidates_and_keeps_human_edits(wh, tmp_path) -> None:
    assert an.add_candidates(wh, config=CONFIG) == 7  # 3 negative detractors with a theme + 4 promoters
    queue = an.followups(wh, config=CONFIG).set_index("response_id")
    assert (
        queue.loc["r8", "reason"] == "detractor_critical_theme" and queue.loc["r8", "action"] == "call back"
    )
    assert queue.loc["r0", "reason"] == "promoter_thanks" and queue.loc["r0", "customer_id"] == "c0"
    an.set_followup(
        wh, "r8", who="bob", status="contacted", owner="bob", note="left a message", config=CONFIG
    )
    assert an.add_candidates(wh, config=CONFIG) == 0  # a second night: nothing new, nothing rewritten
    row = an.followups(wh, config=CONFIG).set_index("response_id").loc["r8"]
    assert (row["status"], row["owner"], row["note"], row["updated_by"]) == (
        "contacted",
        "bob",
        "left a message",
        "bob",
    )
    an.set_followup(wh, "r7", who="bob", status="resolved", config=CONFIG)
    out = tmp_path / "open.csv"
    assert an.export_open(wh, out, config=CONFIG) == 6
    assert "r7" not in pd.read_csv(out)["response_id"].tolist()
    # an edit made in a side file (the dashboard during a nightly run) is merged, and only once
    with open_warehouse(tmp_path / "side.duckdb") as side:
        an.set_followup(side, "r0", who="cy", status="won't fix", config=CONFIG)
        an.correct_sentiment(side, "r1", "neutral", who="cy", config=CONFIG)
        assert an.merge_edits(side, wh, config=CONFIG)[CONFIG.tables.followups] == 1
        assert an.merge_edits(side, wh, config=CONFIG)[CONFIG.tables.followups] == 0
    row = an.followups(wh, config=CONFIG).set_index("response_id").loc["r0"]
    assert row["status"] == "won't fix" and row["reason"] == "promoter_thanks"
    with pytest.raises(Exception, match="status"):
        an.set_followup(wh, "r0", who="x", status="done", config=CONFIG)


def test_status_fails_on_stale_runs_and_drift(kind, tmp_path) -> None:
    from pipeline.clock import utcnow
    from pipeline.runs import RunSummary, write_run

    cfg = CONFIG.model_copy(update={"status": CONFIG.status.model_copy(update={"min_week_answers": 5})})
    with open_test_warehouse(kind, tmp_path / "s.duckdb", cfg) as w:
        n = 400
        rng = np.random.default_rng(1)
        days = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) % 35, unit="D")
        df = tiny().sample(n, replace=True, random_state=1).reset_index(drop=True)
        df["response_id"] = [f"x{i}" for i in range(n)]
        df["submitted_at"] = days
        df["is_non_answer"] = False
        df["language"] = np.where(days > days.max() - pd.Timedelta(days=7), "pt", rng.choice(["en", "de"], n))
        load(w, df, cfg)
        write_run(
            w,
            cfg,
            RunSummary("run-1", rows_in=100, rows_enriched=98, rows_quarantined=2),
            "nightly",
            pd.Timestamp("2026-02-05").to_pydatetime(),
        )
        report = an.pipeline_status(w, config=cfg, now=utcnow() + timedelta(hours=1))
        status = {c.name: c.status for c in report.checks}
        assert status["last_success"] == "ok" and status["quarantine"] == "ok"
        assert status["language_mix"] == "fail" and not report.ok  # the last week is all Portuguese
        late = an.pipeline_status(w, config=cfg, now=utcnow() + timedelta(hours=40))
        assert {c.name: c.status for c in late.checks}["last_success"] == "fail"


def _random_answers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = tiny().sample(n, replace=True, random_state=seed).reset_index(drop=True)
    df["response_id"] = [f"y{i}" for i in range(n)]
    df["score"] = rng.integers(0, 11, n).astype(float)
    names = ["billing", "speed", "staff", "app", "price"]
    df["tags"] = [sorted(set(rng.choice(names, rng.integers(0, 4)).tolist())) for _ in range(n)]
    return df


@pytest.mark.parametrize(("driver_themes", "max_bits"), [(2, 62), (3, 62), (20, 62), (3, 2)])
def test_driver_patterns_are_the_theme_sets_of_the_scored_answers(
    kind, tmp_path, monkeypatch, driver_themes, max_bits
) -> None:
    """The bit-mask patterns equal the theme sets counted row by row, ties at the cut by name; with
    more themes than a mask holds, the named fallback gives the same."""
    import importlib

    mod = importlib.import_module("pipeline.analysis.drivers")  # the package exports a function `drivers`
    monkeypatch.setattr(mod, "MAX_BITS", max_bits)

    cfg = CONFIG.model_copy(
        update={"analysis": CONFIG.analysis.model_copy(update={"driver_themes": driver_themes})}
    )
    df = _random_answers(300, 7)
    for i in range(1, 21):
        df.at[i, "tags"] = ["rare"]  # a theme below the cut
    with open_test_warehouse(kind, tmp_path / "d.duckdb", cfg) as w:
        load(w, df, cfg)
        an.correct_themes(w, "y0", ["staff", "staff"], who="ann", config=cfg)  # a duplicate label
        frame, themes = mod.driver_patterns(w, config=cfg)
    df.at[0, "tags"] = ["staff"]
    counts = pd.Series([t for tags in df["tags"] for t in tags]).value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert themes == sorted(t for t, _ in ranked[:driver_themes])
    want = pd.DataFrame({t: [int(t in tags) for tags in df["tags"]] for t in themes})
    want["det"] = (df["score"] <= 6).astype(int)
    want = want.groupby([*themes, "det"]).size().rename("weight").reset_index()
    got = frame.sort_values([*themes, "det"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
