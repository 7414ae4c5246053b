"""Root-cause analysis on hand-built frames whose numbers are worked out by hand in the comments."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import analysis as an
from pipeline.errors import SchemaError

SCORES = [10, 10, 10, 9, 8, 7, 6, 5, 3, 0]  # 4 promoters, 2 passives, 4 detractors: NPS 0


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


# ---------------------------------------------------------------------------------------------- scores


def test_nps_csat_ces_by_hand() -> None:
    assert an.nps(SCORES) == 0.0
    assert an.nps([10, 10, 0]) == pytest.approx(100 * (2 - 1) / 3)
    assert an.nps([9, 7, 6, np.nan]) == pytest.approx(0.0)  # NaN ignored: 1 promoter, 1 detractor of 3
    assert an.nps(pd.Series([6, 6])) == -100.0
    assert math.isnan(an.nps([]))
    assert an.csat([5, 4, 3, 2]) == 50.0
    assert an.ces([1, 2, 6]) == 3.0
    assert math.isnan(an.csat([]))


def test_scores_out_of_range_or_wrong_input_raise() -> None:
    with pytest.raises(SchemaError, match="between 0 and 10"):
        an.nps([11])
    with pytest.raises(SchemaError, match="between 1 and 5"):
        an.csat([0, 5])
    with pytest.raises(SchemaError, match="not a DataFrame"):
        an.nps(pd.DataFrame({"score": [1]}))


def test_score_breakdown_and_cx_score_picks_dominant_type() -> None:
    df = pd.concat(
        [
            tiny(),
            pd.DataFrame(
                {"response_id": ["s1", "s2", "s3"], "survey_type": "CSAT", "score": [5.0, 4.0, 1.0]}
            ),
        ],
        ignore_index=True,
    )
    assert an.dominant_survey_type(df) == "nps"
    assert an.cx_score(df) == 0.0  # the CSAT rows do not leak into NPS
    assert an.cx_score(df, "csat") == pytest.approx(200 / 3)
    assert an.cx_scores(df) == {"nps": 0.0, "csat": pytest.approx(200 / 3)}
    b = an.score_breakdown(SCORES, "nps")
    assert b == {
        "score": 0.0,
        "n": 10,
        "promoter_share": 40.0,
        "passive_share": 20.0,
        "detractor_share": 40.0,
    }


# ---------------------------------------------------------------------------------------------- themes


def test_theme_impact_by_hand() -> None:
    ti = an.theme_impact(tiny(), min_count=1)
    assert list(ti.columns) == an.THEME_IMPACT_COLUMNS
    assert ti["tag"].tolist() == ["billing", "speed"]  # worst first
    billing = ti.iloc[0]
    # Without billing: r0-r5 and r9 -> 4 promoters, 1 detractor (r9 = 0) of 7 -> NPS 300/7.
    assert billing["nps_impact"] == pytest.approx(0 - 300 / 7)
    assert billing["nps_with"] == -100.0
    assert billing["volume"] == 3
    assert billing["share"] == pytest.approx(3 / 9)  # of the 9 answered responses
    assert billing["detractor_share"] == 1.0
    assert billing["negative_share"] == 1.0
    assert billing["mean_sentiment"] == pytest.approx((-0.5 - 0.6 - 0.9) / 3)
    speed = ti.iloc[1]
    # With speed: 10, 10, 9, 5 -> (3 - 1) / 4 = 50. Without: 10, 8, 7, 6, 3, 0 -> (1 - 3) / 6.
    assert speed["nps_with"] == pytest.approx(50.0)
    assert speed["nps_impact"] == pytest.approx(0 - (-200 / 6))
    assert speed["detractor_share"] == pytest.approx(0.25)


def test_theme_impact_min_count() -> None:
    df = tiny()
    assert an.theme_impact(df, min_count=4)["tag"].tolist() == ["speed"]  # billing has 3
    assert an.theme_impact(df, min_count=3)["tag"].tolist() == ["billing", "speed"]
    empty = an.theme_impact(df, min_count=5)
    assert len(empty) == 0 and list(empty.columns) == an.THEME_IMPACT_COLUMNS


def test_theme_impact_from_tags_table_uses_parents_and_aspect_sentiment() -> None:
    df = tiny()
    df["response_id"] = range(10)  # ints here, strings in the tags table: matched by text
    tags = pd.DataFrame(
        {
            "response_id": ["6", "7", "8", "7", "0", "1", "3", "999"],
            "tag": ["billing", "billing", "billing", "speed", "speed", "speed", "speed", "ghost"],
            "parent_tag": ["money"] * 3 + [None] * 4 + ["x"],
            "score": 0.9,
            "sentiment_label": ["negative"] * 3 + ["positive"] * 4 + ["negative"],
            "sentiment_score": [-1.0, -1.0, -1.0, 0.2, 0.2, 0.2, 0.2, -1.0],
            "source": "model",
        }
    )
    df["tags"] = [[] for _ in range(10)]  # the tags table is the truth when given
    ti = an.theme_impact(df, tags=tags, min_count=1).set_index("tag")
    assert "ghost" not in ti.index  # response 999 is not in enriched
    assert ti.loc["billing", "parent_tag"] == "money"
    assert ti.loc["billing", "nps_impact"] == pytest.approx(-300 / 7)
    assert ti.loc["billing", "mean_sentiment"] == -1.0  # per-tag sentiment, not the response's
    assert ti.loc["speed", "negative_share"] == 0.0  # r7 is negative overall but positive about speed


def test_tags_cell_formats_are_normalised() -> None:
    df = tiny()
    df["tags"] = [
        np.array(["speed"]),
        "speed",
        None,
        "speed| ",
        np.nan,
        [],
        ("billing",),
        "billing|speed",
        ["billing", "billing"],
        [],
    ]
    ti = an.theme_impact(df, min_count=1).set_index("tag")
    assert ti.loc["billing", "volume"] == 3 and ti.loc["speed", "volume"] == 4


def test_bad_input_messages() -> None:
    with pytest.raises(SchemaError, match="missing column"):
        an.theme_impact(pd.DataFrame({"response_id": [1], "score": [3]}))
    df = tiny()
    df.loc[0, "survey_type"] = "star"
    with pytest.raises(SchemaError, match="unknown survey_type"):
        an.theme_impact(df)
    df = tiny()
    df.loc[0, "score"] = 11.0
    with pytest.raises(SchemaError, match="outside 0..10"):
        an.summarise(df)


# ---------------------------------------------------------------------------------------------- segments


def test_detect_segments_excludes_ids_text_and_contacts() -> None:
    df = tiny()
    n = len(df)
    df["region"] = pd.Categorical(["EU", "US"] * 5)
    df["email"] = [f"u{i}@example.com" for i in range(n)]
    df["account_id"] = ["a", "b"] * 5  # low cardinality but an id by name
    df["comment"] = ["raw text"] * 5 + ["other raw text"] * 5
    df["free_text_note"] = ["x", "y"] * 5
    df["order_ref"] = [f"o{i}" for i in range(n)]  # every value distinct: an id under another name
    df["signup_at"] = ["2024-01-01", "2024-02-01"] * 5
    df["constant"] = "same"
    df["many"] = [str(i % 40) for i in range(n)]  # unique per row here as well
    df["nps_bucket_num"] = [1, 2] * 5  # numeric: not a segment
    df["labels"] = [["a"], ["b"]] * 5  # lists: unhashable
    assert an.detect_segments(df) == ["channel", "region"]
    assert an.detect_segments(df, max_values=1) == []


def test_segment_breakdown_by_hand() -> None:
    seg = an.segment_breakdown(tiny(), ["channel"], min_count=5)
    assert list(seg.columns) == an.SEGMENT_COLUMNS
    assert seg["value"].tolist() == ["app", "web"]  # worst first
    app, web = seg.iloc[0], seg.iloc[1]
    # app: 7, 6, 5, 3, 0 -> -80; web: 10, 10, 10, 9, 8 -> +80.
    assert app["nps"] == -80.0 and web["nps"] == 80.0
    assert app["nps_delta"] == -80.0
    assert app["n"] == 5 and app["n_answered"] == 4
    # Within app, without billing: 7 and 0 -> -50, so the impact is -80 - (-50) = -30.
    assert app["top_negative_tag"] == "billing"
    assert app["top_negative_impact"] == pytest.approx(-30.0)
    assert pd.isna(web["top_negative_tag"])  # speed lifts web
    assert app["mean_sentiment"] == pytest.approx((0.0 - 0.5 - 0.6 - 0.9) / 4)
    assert len(an.segment_breakdown(tiny(), ["channel"], min_count=6)) == 0
    # billing has 3 responses in app: too few when 4 are required.
    strict = an.segment_breakdown(tiny(), ["channel"], min_count=5, tag_min_count=4)
    assert strict["top_negative_tag"].isna().all()
    with pytest.raises(SchemaError, match="no column 'plan'"):
        an.segment_breakdown(tiny(), ["plan"])


def test_tag_segment_matrix_shares() -> None:
    m = an.tag_segment_matrix(tiny(), "channel")
    assert m.loc["web", "speed"] == pytest.approx(3 / 5)
    assert m.loc["web", "billing"] == 0.0
    assert m.loc["app", "billing"] == pytest.approx(3 / 4)  # r9 is a non-answer: 4 answered in app
    assert m.loc["app", "speed"] == pytest.approx(1 / 4)
    assert list(m.columns) == ["speed", "billing"]  # most frequent first
    assert list(an.tag_segment_matrix(tiny(), "channel", max_tags=1).columns) == ["speed"]


# ---------------------------------------------------------------------------------------------- trends


def test_trends_weekly_long_form() -> None:
    df = tiny().iloc[:4].copy()  # 10, 10, 10, 9 with tags speed, speed, -, speed
    df["submitted_at"] = pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-17", "2024-01-18"])
    df.loc[2, "score"] = 0.0
    tr = an.trends(df, freq="W")
    assert list(tr.columns) == an.TREND_COLUMNS
    weeks = sorted(tr["period"].unique())
    assert [pd.Timestamp(w) for w in weeks] == list(
        pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15"])
    )
    speed = tr[tr["tag"] == "speed"].set_index("period")
    assert speed["count"].tolist() == [2, 0, 1]  # the empty week is kept, with 0
    assert speed.loc[pd.Timestamp("2024-01-15"), "share"] == 0.5
    assert speed.loc[pd.Timestamp("2024-01-15"), "nps"] == 0.0  # 0 and 9: (1 - 1) / 2
    assert math.isnan(speed.loc[pd.Timestamp("2024-01-08"), "nps"])
    st = an.score_trend(df, freq="W")
    assert st["n"].tolist() == [2, 0, 2]


def test_trends_timezone_aware_dates() -> None:
    df = tiny()
    df["submitted_at"] = df["submitted_at"].dt.tz_localize("Europe/Berlin")
    assert int(an.trends(df)["count"].sum()) == 7


# ---------------------------------------------------------------------------------------------- close the loop


def loop_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "survey_type": ["nps", "nps", "nps", "nps", "nps", "nps", "csat", "csat"],
            "score": [2.0, 6.0, 0.0, 9.0, 3.0, 4.0, 2.0, 3.0],
            "submitted_at": pd.to_datetime(
                [
                    "2024-03-01 09:00",
                    "2024-03-02 08:00",
                    "2024-03-02 18:00",
                    "2024-03-03 10:00",
                    "2024-03-03 10:00",
                    "2024-03-03 10:00",
                    "2024-02-20 10:00",
                    "2024-03-04 10:00",
                ]
            ),
            "is_non_answer": False,
            "sentiment_label": [
                "negative",
                "negative",
                "negative",
                "negative",
                "neutral",
                "negative",
                "negative",
                "negative",
            ],
            "sentiment_score": [-0.9, -0.9, -0.4, -0.9, -0.1, -0.8, -0.7, -0.9],
            "tags": [["x"], ["x"], ["y"], ["x"], ["x"], [], ["z"], ["z"]],
            "text_redacted": ["call [PHONE]"] * 8,
            "comment": ["raw: call 555-1234"] * 8,
            "customer_id": list("ABCDEFGH"),
        }
    )


def test_close_the_loop_order_filters_and_columns() -> None:
    out = an.close_the_loop(loop_frame())
    # d: a promoter; e: neutral; f: no tag; h: CSAT 3 is not a detractor.
    # Newest day first; within 2024-03-02 the more negative b (-0.9) before c (-0.4) although c is later.
    assert out["response_id"].tolist() == ["b", "c", "a", "g"]
    assert list(out.columns) == [
        "response_id",
        "customer_id",
        "survey_type",
        "score",
        "submitted_at",
        "tags",
        "sentiment_score",
        "text_redacted",
    ]
    assert "comment" not in out.columns
    assert an.close_the_loop(loop_frame(), n=2)["response_id"].tolist() == ["b", "c"]
    no_customer = an.close_the_loop(loop_frame().drop(columns="customer_id"))
    assert "customer_id" not in no_customer.columns


# ---------------------------------------------------------------------------------------------- summary


def test_summarise_and_format_summary() -> None:
    topics = pd.DataFrame(
        {
            "topic_id": [-1, 0, 1, 2],
            "label": ["outliers", "fast", "ok", "price"],
            "keywords": [[], ["quick"], ["fine"], ["price", "cost"]],
            "size": [1, 4, 2, 3],
        }
    )
    s = an.summarise(tiny(), topics=topics, segment_min_count=5, min_count=1)
    assert (s.n_responses, s.n_answered, s.n_non_answer) == (10, 9, 1)
    assert s.score_type == "nps" and s.overall["score"] == 0.0
    assert s.languages == {"en": 6, "de": 3}
    assert s.sentiment == {"positive": 4, "negative": 3, "neutral": 2}
    assert s.tagged_share == pytest.approx(6 / 9)
    assert s.theme_impact["tag"].tolist() == ["billing", "speed"]
    assert s.segments["segment"].unique().tolist() == ["channel"]  # customer_id and text left out
    assert s.heatmap_segment == "channel" and s.tag_matrix.shape == (2, 2)
    assert s.close_the_loop_total == 3
    assert s.top_topics["topic_id"].tolist() == [0, 2, 1]  # -1 dropped; by responses
    price = s.top_topics.set_index("topic_id").loc[2]
    assert price["label"] == "price" and price["keywords"] == ["price", "cost"] and price["nps"] == -100.0
    text = an.format_summary(s)
    for needle in (
        "billing",
        "speed",
        "-42.9",
        "+33.3",
        "-100.0",
        "NPS: +0.0",
        "channel",
        "app",
        "Close the loop: 3",
    ):
        assert needle in text, needle
    assert json.loads(json.dumps(s.to_dict(), allow_nan=False))["theme_impact"][0]["tag"] == "billing"


def test_summary_mixed_types_reports_other_types() -> None:
    csat_rows = pd.DataFrame(
        {"response_id": ["s1", "s2"], "survey_type": "csat", "score": [5.0, 1.0], "tags": [["billing"], []]}
    )
    df = pd.concat([tiny(), csat_rows], ignore_index=True)
    s = an.summarise(df, min_count=1)
    assert s.score_type == "nps" and s.overall["n"] == 10
    assert s.overall_by_type["csat"]["score"] == 50.0
    assert s.theme_impact.set_index("tag").loc["billing", "volume"] == 3  # CSAT rows stay out of NPS impact
    assert "CSAT 50.0" in an.format_summary(s)


@pytest.mark.parametrize(
    "frame",
    [pd.DataFrame(), tiny().iloc[0:0], tiny().assign(tags=[[] for _ in range(10)])],
    ids=["no-columns", "no-rows", "no-tags"],
)
def test_empty_inputs_do_not_crash(frame: pd.DataFrame) -> None:
    s = an.summarise(frame)
    assert len(s.theme_impact) == 0 and list(s.theme_impact.columns) == an.THEME_IMPACT_COLUMNS
    assert len(s.close_the_loop) == 0
    text = an.format_summary(s)
    assert ("No responses" in text) if len(frame) == 0 else ("No themes" in text)
    json.dumps(s.to_dict(), allow_nan=False)
    assert len(an.trends(frame)) == 0
    assert len(an.segment_breakdown(frame, [], min_count=1)) == 0


def test_inputs_are_not_mutated() -> None:
    df = tiny()
    df["submitted_at"] = df["submitted_at"].dt.tz_localize("UTC")
    tags = pd.DataFrame(
        {"response_id": ["r6", "r7"], "tag": ["billing", "billing"], "sentiment_score": [-1.0, -1.0]}
    )
    before_df, before_tags = df.copy(deep=True), tags.copy(deep=True)
    before_lists = copy.deepcopy(df["tags"].tolist())
    an.summarise(df, tags=tags, min_count=1, segment_min_count=1)
    an.summarise(df, min_count=1, segment_min_count=1)
    an.theme_impact(df, tags=tags, min_count=1)
    an.segment_breakdown(df, ["channel"], min_count=1)
    an.tag_segment_matrix(df, "channel")
    an.trends(df)
    an.close_the_loop(df, tags=tags)
    an.cx_score(df)
    pd.testing.assert_frame_equal(df, before_df)
    pd.testing.assert_frame_equal(tags, before_tags)
    assert df["tags"].tolist() == before_lists


def test_tags_from_two_codeframe_versions_are_never_mixed_silently() -> None:
    one = tiny().assign(taxonomy_version="tax-a")
    assert an.summarise(one, min_count=1).notes == []
    two = tiny().assign(taxonomy_version=["tax-a"] * 5 + ["tax-b"] * 5)
    s = an.summarise(two, min_count=1)
    assert len(s.notes) == 1 and "2 codeframe versions" in s.notes[0]
    assert "tax-a (5 answers)" in s.notes[0] and "tax-b (4 answers)" in s.notes[0]  # answered rows only
    assert an.format_summary(s).startswith("Note: tags come from 2 codeframe versions")
