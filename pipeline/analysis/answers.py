"""Drill-down: the answers behind a number, one page at a time (redacted text only).

The one place where rows leave the warehouse, and only ``limit`` of them: the page is selected, ordered
and cut in SQL; its themes and sentences are then read for those ids alone.
"""

from __future__ import annotations

import pandas as pd

from pipeline.analysis.filters import Filters, Params, Scope
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse

ANSWER_COLUMNS = [
    "response_id",
    "customer_id",
    "survey_type",
    "score",
    "submitted_at",
    "language",
    "sentiment_label",
    "sentiment_score",
    "sentiment_human",
    "topic_id",
    "themes",
    "themes_human",
    "text_redacted",
    "sentences",
    "segments",
]
MAX_LIMIT = 1000


def _searching(search: str | None) -> bool:
    """Whether a search text restricts the answers."""
    return bool(search and search.strip())


def _search(scope: Scope, search: str | None, p: Params) -> str:
    if not search or not search.strip():
        return ""
    return f" AND LOWER(e.text_redacted) LIKE {p.add('%' + search.strip().lower() + '%')}"


def answer_count(
    wh: Warehouse,
    filters: Filters | None = None,
    search: str | None = None,
    *,
    config: EnrichmentConfig | None = None,
) -> int:
    """How many answers :func:`answers` pages through."""
    scope = Scope.of(wh, config)
    if scope.empty:
        return 0
    p = Params()
    head = scope.ctes(filters or Filters(), p, extra=["text_redacted"], tags=False)
    cond = _search(scope, search, p).replace("e.text_redacted", "text_redacted")
    rows = scope.run(f"{head} SELECT COUNT(*) AS n FROM base WHERE NOT is_non_answer{cond}", p)
    return int(rows["n"].iloc[0])


def answers(
    wh: Warehouse,
    filters: Filters | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """One page of answered responses in the slice, newest first.

    Args:
        wh: The warehouse.
        filters: The slice (every survey type unless it names one).
        search: Case-insensitive text the redacted answer must contain.
        limit: Page size (at most :data:`MAX_LIMIT`).
        offset: Rows skipped.
        config: Table names; ``source.customer_id`` names the customer column.

    Returns:
        :data:`ANSWER_COLUMNS`: the effective sentiment (``sentiment_human`` when a person set it), the
        effective themes (``themes_human`` when a person set them), the redacted text, ``sentences``
        (the redacted sentences carrying one of ``filters.themes``, or every sentence without a theme
        filter) and ``segments`` ({column: value} of the segment columns).
    """
    config = config or EnrichmentConfig()
    filters = filters or Filters()
    scope = Scope.of(wh, config)
    if scope.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ANSWER_COLUMNS})
    limit = max(0, min(int(limit), MAX_LIMIT))
    customer = config.source.customer_id or "customer_id"
    segs = scope.segment_columns()
    extra = ["text_redacted", *segs] + ([customer] if customer in scope.enriched_columns else [])
    p = Params()
    head = scope.ctes(filters, p, extra=["text_redacted"] if _searching(search) else None, tags=False)
    cond = _search(scope, search, p).replace("e.text_redacted", "text_redacted")
    # The page's ids first (two narrow columns to sort), then its wide rows by id: sorting every
    # matching row with its text cost most of a page at 1M responses (bench/README.md, "Analysis").
    keys = scope.run(
        f"{head} SELECT response_id FROM base WHERE NOT is_non_answer{cond} "
        f"ORDER BY submitted_at DESC, response_id LIMIT {limit} OFFSET {max(0, int(offset))}",
        p,
    )
    ids = keys["response_id"].astype(str).tolist()
    if ids:
        p1 = Params()
        rows = scope.run(
            f"{scope.ctes(Filters(), p1, extra=extra, tags=False)} SELECT * FROM base "
            f"WHERE response_id IN {p1.many(ids)}",
            p1,
        )
        rows["response_id"] = rows["response_id"].astype(str)
        page = rows.set_index("response_id", drop=False).loc[ids].reset_index(drop=True)
    else:
        p1 = Params()
        page = scope.run(
            f"{scope.ctes(Filters(), p1, extra=extra, tags=False)} SELECT * FROM base WHERE 1 = 0", p1
        )
    themes: dict[str, list[str]] = {}
    human: dict[str, bool] = {}
    if ids:
        p2 = Params()
        rows = scope.run(
            f"WITH etags AS ({scope.etags_select(p2, restrict=None)}) SELECT response_id, tag, human FROM etags "
            f"WHERE response_id IN {p2.many(ids)} ORDER BY response_id, tag",
            p2,
        )
        for r in rows.itertuples(index=False):
            themes.setdefault(str(r.response_id), []).append(str(r.tag))
            human[str(r.response_id)] = bool(r.human)
    sentences = _sentences(scope, ids, filters)
    out = pd.DataFrame(
        {
            "response_id": ids,
            "customer_id": page[customer].astype(object).to_numpy() if customer in page else None,
            "survey_type": page["survey_type"].to_numpy(),
            "score": page["score"].to_numpy(),
            "submitted_at": page["submitted_at"].to_numpy(),
            "language": page["language"].to_numpy(),
            "sentiment_label": page["sentiment_label"].to_numpy(),
            "sentiment_score": page["sentiment_score"].to_numpy(),
            "sentiment_human": page["sentiment_human"].astype(bool).to_numpy(),
            "topic_id": page["topic_id"].to_numpy(),
            "themes": [themes.get(i, []) for i in ids],
            "themes_human": [human.get(i, False) for i in ids],
            "text_redacted": page["text_redacted"].to_numpy(),
            "sentences": [sentences.get(i, []) for i in ids],
            "segments": [{s: page[s].iloc[k] for s in segs} for k in range(len(page))],
        },
        columns=ANSWER_COLUMNS,
    )
    return out


def _sentences(scope: Scope, ids: list[str], filters: Filters) -> dict[str, list[str]]:
    table = scope.config.tables.sentences
    if not ids or not scope.wh.table_exists(table):
        return {}
    rows = scope.wh.read(
        table, ["response_id", "sentence_id", "text_redacted", "tags"], where={"response_id": ids}
    )
    rows = rows.sort_values(["response_id", "sentence_id"])
    wanted = set(filters.themes)
    out: dict[str, list[str]] = {}
    for r in rows.itertuples(index=False):
        tags = set(r.tags) if isinstance(r.tags, list | tuple) else set()
        if not wanted or tags & wanted:
            out.setdefault(str(r.response_id), []).append(str(r.text_redacted))
    return out
