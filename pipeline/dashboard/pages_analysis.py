"""Overview, Themes, Segments, Topics and alerts: every number from :mod:`pipeline.analysis`.

Numbers are shown as the report shows them (scores with one decimal, with their interval); each one
that stands for answers links to the Answers page under the same filters.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from pipeline.analysis.filters import SCORE_NAMES
from pipeline.dashboard.ui import Ctx, drill, md_text, render_table, text_frame


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _trend_chart(frame: pd.DataFrame, y: str, title: str) -> None:
    """A line with its interval band (when the frame has low/high) and the volume as bars."""
    import altair as alt

    if frame.empty:
        st.caption("No data in this slice.")
        return
    base = alt.Chart(frame).encode(x=alt.X("period:T", title=None))
    layers = []
    if {"low", "high"} <= set(frame.columns):
        layers.append(base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q", title=title), y2="high:Q"))
    layers.append(base.mark_line(point=True).encode(y=alt.Y(f"{y}:Q", title=title)))
    chart = alt.layer(*layers).properties(height=220)
    if "n" in frame.columns:
        bars = base.mark_bar(opacity=0.4).encode(y=alt.Y("n:Q", title="responses")).properties(height=90)
        chart = alt.vconcat(chart, bars)
    st.altair_chart(chart, width="stretch")


def overview(ctx: Ctx) -> None:
    """The score with its interval, trend, change vs the previous period, sentiment mix, tagged share."""
    f, cfg = ctx.filters, ctx.config
    s = ctx.analysis("score_summary", f)
    o = ctx.analysis("overview", f)
    name = SCORE_NAMES.get(s.survey_type, s.survey_type.upper())
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        f"{name} ({int(cfg.analysis.confidence * 100)}% interval)",
        _fmt(s.score),
        help="The score of the slice; the interval says how sure we are of it.",
    )
    c1.caption(
        f"interval {_fmt(s.low)} to {_fmt(s.high)}; n = {s.n}" + (" (small sample)" if s.small_sample else "")
    )
    if s.change is not None:
        sig = "significant" if s.change.p_value < 1 - cfg.analysis.confidence else "not significant"
        c2.metric("Change vs previous period", f"{s.change.delta:+.1f}", delta=f"{s.change.delta:+.1f}")
        c2.caption(
            f"{sig} (p = {s.change.p_value:.3f}; interval {_fmt(s.change.low)} to {_fmt(s.change.high)})"
        )
    else:
        c2.metric("Change vs previous period", "n/a")
        c2.caption("Set From and To to compare with the period of the same length before.")
    c3.metric("Responses", f"{o.n_responses:,}")
    c3.caption(f"{o.n_answered:,} answered the why question")
    c4.metric("Tagged share", f"{100 * o.tagged_share:.1f}%" if not math.isnan(o.tagged_share) else "n/a")
    drill(f"Read the {o.n_answered:,} answers", ctx.link("answers"))
    st.subheader(f"{name} trend (weekly, with its interval) and volume")
    _trend_chart(ctx.analysis("score_trend", f, "W"), "score", name)
    left, right = st.columns(2)
    with left:
        st.subheader("Sentiment mix")
        mix = pd.DataFrame({"sentiment": list(o.sentiment), "responses": list(o.sentiment.values())})
        if len(mix):
            mix["share %"] = (100 * mix["responses"] / mix["responses"].sum()).round(1)
        render_table(mix)
        for label in o.sentiment:
            if label in ("negative", "neutral", "positive"):
                drill(f"{label} answers", ctx.link("answers", sentiments=[label]))
    with right:
        st.subheader("Languages")
        langs = pd.DataFrame({"language": list(o.languages), "responses": list(o.languages.values())})
        render_table(langs)


def themes(ctx: Ctx) -> None:
    """Theme impact with intervals, the driver view, parents rolled up, per-theme sentiment, trend."""
    f, cfg = ctx.filters, ctx.config
    level = st.radio("Level", ["theme", "parent"], horizontal=True, key="w_level")
    got = ctx.analyses(
        {
            "impact": ("theme_impact", (f,), {"level": level}),
            "drivers": ("drivers", (f,), {"level": level}),
            "trend": ("theme_trend", (f, "W"), {"level": level}),
        }
    )
    impact = got["impact"]
    st.caption(
        "impact = score without the theme minus score overall: what the theme costs (negative) or adds; "
        f"interval by bootstrap; small_sample below {cfg.analysis.small_sample} answers."
    )
    if impact.empty:
        st.info("No themes in this slice.")
        return
    shown = impact.copy()
    for col in ("share", "detractor_share", "negative_share", "human_share"):
        shown[col] = 100 * shown[col].astype(float)
    shown = shown.rename(columns={"tag": "theme", "share": "share %", "detractor_share": "detractors %"})
    shown = shown.rename(columns={"negative_share": "negative %", "human_share": "human %"})
    render_table(shown, highlight="small_sample")
    st.markdown("**The answers behind each theme**")
    cols = st.columns(4)
    for i, row in enumerate(impact.itertuples(index=False)):
        with cols[i % 4]:
            drill(f"{row.tag}: {int(row.volume)} answers", ctx.link("answers", themes=[str(row.tag)]))
    st.subheader("Drivers of detractors")
    st.caption(
        "Logistic regression of being a detractor on the themes: odds ratios with intervals (BH-adjusted)."
    )
    render_table(got["drivers"], highlight="significant")
    st.subheader("Theme trend (weekly share of answered responses)")
    trend = got["trend"]
    if len(trend):
        import altair as alt

        chart = (
            alt.Chart(trend).mark_line().encode(x=alt.X("period:T", title=None), y="share:Q", color="tag:N")
        )
        st.altair_chart(chart.properties(height=260), width="stretch")


def segments(ctx: Ctx) -> None:
    """The theme x segment cross-tab with the significant cells highlighted, and scores per segment."""
    if not ctx.segments:
        st.info("No segment columns: name them in source.segments of the config.")
        return
    seg = st.selectbox("Segment", ctx.segments, key="w_segment")
    cross = ctx.analysis("segment_theme_crosstab", seg, ctx.filters)
    st.caption(
        "Share (%) of answered responses with each theme per segment value; highlighted: differs from "
        f"the rest significantly after Benjamini-Hochberg at FDR {ctx.config.analysis.fdr:g}."
    )
    if cross.empty:
        st.info("No themes in this slice.")
    else:
        share = (cross.pivot(index="tag", columns="value", values="share") * 100).round(1)
        flags = cross.pivot(index="tag", columns="value", values="significant").fillna(False).astype(bool)
        shown = text_frame(share.reset_index().rename(columns={"tag": "theme"}))
        shown.columns = [md_text(c) for c in shown.columns]
        marks = flags.reset_index(drop=True).to_numpy()
        styler = shown.style.apply(
            lambda row: (
                [""] + ["background-color: #ffd27f; font-weight: bold" if m else "" for m in marks[row.name]]
            ),
            axis=1,
        )
        st.table(styler)
        significant = cross[cross["significant"].astype(bool)]
        if len(significant):
            st.markdown("**Significant cells**")
            for row in significant.itertuples(index=False):
                drill(
                    f"{row.tag} in {seg} = {row.value}: {100 * row.share:.1f}% vs {100 * row.share_rest:.1f}% "
                    f"elsewhere ({int(row.count)} answers)",
                    ctx.link(
                        "answers",
                        themes=[str(row.tag)],
                        segments={**ctx.filters.segments, seg: [str(row.value)]},
                    ),
                )
    st.subheader(f"Score per {seg}")
    scores = ctx.analysis("segment_scores", seg, ctx.filters)
    render_table(scores, highlight="small_sample")


def topics(ctx: Ctx) -> None:
    """Emerging topics and themes with their evidence; the topics and their history."""
    cfg, wh = ctx.config, ctx.wh
    st.subheader("Alerts (emerging topics and themes)")
    alerts = ctx.analysis("emerging")
    if alerts.empty:
        st.caption("Nothing emerging in the last period.")
    else:
        render_table(alerts)
    t = cfg.tables
    if wh.table_exists(t.topics):
        st.subheader("Topics")
        tops = wh.read(t.topics).sort_values("size", ascending=False)
        keep = [c for c in ("topic_id", "label", "keywords", "size", "first_seen", "last_seen") if c in tops]
        render_table(tops[keep])
        for row in tops.head(12).itertuples(index=False):
            if int(row.topic_id) >= 0:
                drill(
                    f"answers of topic {int(row.topic_id)}", ctx.link("answers", topics=[int(row.topic_id)])
                )
    if wh.table_exists(t.topic_history):
        st.subheader("Topic history")
        hist = wh.read(t.topic_history)
        render_table(hist.tail(200))
