"""Answers (drill-down), Close the loop (the follow-up queue) and Review (corrections).

Answer text is only ever shown through ``st.table`` / ``st.text`` / ``st.code``: rendered as text, so
an answer containing HTML or Markdown shows its characters and runs nothing. The customer identifier is
shown only on Close the loop; everywhere else the answers are redacted and carry no identifier.
"""

from __future__ import annotations

import getpass

import pandas as pd
import streamlit as st

from pipeline import analysis
from pipeline.analysis.filters import Filters
from pipeline.analysis.followups import STATUSES
from pipeline.config import EnrichmentConfig
from pipeline.dashboard.ui import SENTIMENTS, Ctx, drill, render_table
from pipeline.warehouse.base import Warehouse

PAGE_SIZE = 50
ANSWER_COLUMNS = [
    "response_id", "submitted", "score", "sentiment", "themes", "segments", "language", "text", "theme sentence"
]  # fmt: skip
EXPORT_MAX = 10_000


def _who() -> str:
    """Who edits: the user name a reverse proxy passes (see the README), else this server's OS user."""
    try:
        headers = st.context.headers
        for name in ("X-Forwarded-User", "X-Auth-Request-Email", "X-Remote-User"):
            if headers.get(name):
                return str(headers[name])
    except Exception:  # no request context (AppTest)
        pass
    return f"dashboard:{getpass.getuser()}"


def _answer_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The answers as a text table, without the customer identifier (redacted text only)."""
    if frame.empty:
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    segs = frame["segments"].map(lambda d: ", ".join(f"{k}={v}" for k, v in (d or {}).items()))
    return pd.DataFrame(
        {
            "response_id": frame["response_id"].astype(str),
            "submitted": pd.to_datetime(frame["submitted_at"]).dt.strftime("%Y-%m-%d"),
            "score": frame["score"],
            "sentiment": frame["sentiment_label"].astype(str) + frame["sentiment_human"].map({True: " (human)", False: ""}),
            "themes": frame["themes"].map(lambda t: ", ".join(t)) + frame["themes_human"].map({True: " (human)", False: ""}),
            "segments": segs,
            "language": frame["language"].astype(str),
            "text": frame["text_redacted"].astype(str),
            "theme sentence": frame["sentences"].map(lambda s: " / ".join(s)),
        }
    )  # fmt: skip


def answers(ctx: Ctx) -> None:
    """One page of the answers behind the filters: searchable, with the theme's sentence highlighted."""
    f, cfg = ctx.filters, ctx.config
    query = st.text_input("Search the answers", key="w_q", placeholder="word or phrase")
    total = analysis.answer_count(ctx.wh, f, query or None, config=cfg)
    pages = max(1, -(-total // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="w_page_no") if pages > 1 else 1
    st.caption(f"{total:,} answers match" + (f" '{query}'" if query else "") + (
        "; the highlighted column is the sentence that carries the theme." if f.themes else ""
    ))  # fmt: skip
    frame = analysis.answers(ctx.wh, f, query or None, PAGE_SIZE, (int(page) - 1) * PAGE_SIZE, config=cfg)
    rows = _answer_rows(frame)
    if len(rows):
        render_table(rows, column="theme sentence")
        first = rows.iloc[0]
        st.markdown("**Reading view** (first answer of the page)")
        st.text(first["text"])
        if first["theme sentence"]:
            st.code(first["theme sentence"], language=None, wrap_lines=True)
        for rid in rows["response_id"].head(10):
            drill(f"review {rid}", ctx.link("review") + f"&rid={rid}")
    if total and st.button("Prepare CSV export", key="w_export"):
        if total > EXPORT_MAX:
            st.caption(
                f"The export holds the first {EXPORT_MAX:,} of the {total:,} answers: narrow the filters."
            )
        data = answers_csv(ctx.wh, f, query or None, config=cfg)
        st.download_button("Download CSV", data, "answers.csv", "text/csv", key="w_download")


def answers_csv(
    wh: Warehouse, filters: Filters, query: str | None, *, config: EnrichmentConfig, limit: int = EXPORT_MAX
) -> bytes:
    """The answers behind ``filters`` (and ``query``) as the Answers page shows them, at most ``limit``:
    redacted text, no customer identifier, spreadsheet-safe CSV (:mod:`pipeline.analysis.csv_export`)."""
    from pipeline.analysis.csv_export import write_csv

    parts, offset = [], 0
    while offset < limit:
        part = analysis.answers(wh, filters, query, min(1000, limit - offset), offset, config=config)
        if part.empty:
            break
        parts.append(_answer_rows(part))
        offset += len(part)
    frame = pd.concat(parts, ignore_index=True) if parts else _answer_rows(pd.DataFrame())
    return write_csv(frame) or b""


def _queue(ctx: Ctx) -> pd.DataFrame:
    """The follow-up queue of the snapshot, with the dashboard's not-yet-imported edits over it."""
    queue = analysis.followups(ctx.wh, ctx.filters, config=ctx.config)
    pending = ctx.store.pending_followups()
    if len(pending):
        edits = pending.set_index("response_id")
        queue = queue.set_index("response_id")
        for rid, edit in edits.iterrows():
            if rid in queue.index:
                for col in ("status", "owner", "note", "updated_at", "updated_by"):
                    queue.loc[rid, col] = edit[col]
            else:
                queue.loc[rid] = edit.reindex(queue.columns)
        queue = queue.reset_index()
    return queue


def followups(ctx: Ctx) -> None:
    """The close-the-loop queue; set a follow-up's status, owner and note."""
    queue = _queue(ctx)
    statuses = st.multiselect("Status", list(STATUSES), default=["new", "contacted"], key="w_statuses")
    picked = queue["response_id"].astype(str) == ctx.state.response_id  # the one being worked on stays
    shown = queue[queue["status"].isin(statuses) | picked] if statuses else queue
    cust = ctx.config.source.customer_id or "customer_id"
    st.caption(f"{len(shown):,} follow-ups. The customer identifier ({cust}) is shown here only.")
    cols = [c for c in ("response_id", "customer_id", "survey_type", "score", "reason", "action", "status",
                        "owner", "note", "updated_by", "updated_at") if c in shown.columns]  # fmt: skip
    render_table(shown[cols].head(200))
    st.subheader("Update a follow-up")
    ids = queue["response_id"].astype(str).tolist()
    wanted = ctx.state.response_id
    rid = st.text_input("Response id", value=wanted or (ids[0] if ids else ""), key="w_fu_rid")
    current = queue[queue["response_id"].astype(str) == rid]
    now = current.iloc[0] if len(current) else pd.Series(dtype=object)
    with st.form("followup"):
        status = st.selectbox(
            "Status", list(STATUSES), index=list(STATUSES).index(now.get("status") or "new")
            if (now.get("status") or "new") in STATUSES else 0,
        )  # fmt: skip
        owner = st.text_input("Owner", value=str(now.get("owner") or ""))
        note = st.text_area("Note", value=str(now.get("note") or ""))
        if st.form_submit_button("Save follow-up") and rid:
            ctx.store.set_followup(rid, status=status, owner=owner, note=note, who=_who())
            st.success(f"Saved: {rid} is {status}.")


def _corrections(ctx: Ctx, rid: str | None = None) -> pd.DataFrame:
    """Corrections of the snapshot with the dashboard's not-yet-imported ones first (newest wins)."""
    ids = [rid] if rid else None
    both = pd.concat(
        [ctx.store.pending_corrections(), analysis.corrections(ctx.wh, ids, config=ctx.config)],
        ignore_index=True,
    )
    if rid:
        both = both[both["response_id"].astype(str) == rid]
    return both.drop_duplicates(["response_id", "kind"], keep="first").reset_index(drop=True)


def review(ctx: Ctx) -> None:
    """Fix an answer's themes or sentiment: written as corrections, shown over the model's labels."""
    page = analysis.answers(ctx.wh, ctx.filters, None, PAGE_SIZE, 0, config=ctx.config)
    ids = page["response_id"].astype(str).tolist()
    rid = st.text_input(
        "Response id", value=ctx.state.response_id or (ids[0] if ids else ""), key="w_rev_rid"
    )
    if not rid:
        st.info("No answers in this slice.")
        return
    t = ctx.config.tables
    one = ctx.wh.read(
        t.enriched, ["response_id", "text_redacted", "sentiment_label", "tags"], where={"response_id": [rid]}
    )
    if one.empty:
        st.warning(f"No answer {rid} in the warehouse snapshot.")
        return
    row = one.iloc[0]
    st.text(str(row["text_redacted"]))
    fixes = _corrections(ctx, rid)
    themes_fix = fixes[fixes["kind"] == "themes"]
    sent_fix = fixes[fixes["kind"] == "sentiment"]
    model_themes = list(row["tags"]) if isinstance(row["tags"], list | tuple) else []
    shown_themes = list(themes_fix.iloc[0]["value"]) if len(themes_fix) else model_themes
    shown_sent = str(sent_fix.iloc[0]["value"]) if len(sent_fix) else str(row["sentiment_label"])
    render_table(pd.DataFrame({
        "label": ["themes", "sentiment"],
        "shown": [", ".join(shown_themes), shown_sent],
        "source": ["human" if len(themes_fix) else "model", "human" if len(sent_fix) else "model"],
    }))  # fmt: skip
    opts = ctx.themes
    with st.form("review"):
        chosen = st.multiselect("Themes", sorted(set(opts) | set(shown_themes)), default=shown_themes)
        sentiment = st.selectbox(
            "Sentiment", SENTIMENTS, index=SENTIMENTS.index(shown_sent) if shown_sent in SENTIMENTS else 1
        )
        if st.form_submit_button("Save correction"):
            who = _who()
            if sorted(chosen) != sorted(shown_themes):
                ctx.store.correct_themes(rid, chosen, who)
            if sentiment != shown_sent:
                ctx.store.correct_sentiment(rid, sentiment, who)
            st.rerun()
    st.subheader("Corrections")
    allfix = _corrections(ctx)
    if len(allfix):
        allfix = allfix.assign(
            value=allfix["value"].map(lambda v: ", ".join(v) if isinstance(v, list | tuple) else str(v))
        )
    render_table(allfix)
    drill("answers of this slice", ctx.link("answers"))
