"""The dashboard's view state (page + filters) and its URL form, so a view can be shared as a link.

Pure functions, no Streamlit: the app reads ``st.query_params`` into a :class:`ViewState` with
:func:`from_params` and writes it back with :func:`to_params`. URL keys:

``page``, ``start``, ``end`` (ISO dates), ``type`` (nps|csat|ces), ``lang``, ``theme``, ``sentiment``,
``topic`` (each repeatable), ``seg.<column>`` (repeatable), ``q`` (text search of the Answers page),
``rid`` (one response, on Review / Close the loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from pipeline.analysis.filters import Filters

PAGES: dict[str, str] = {
    "overview": "Overview",
    "themes": "Themes",
    "segments": "Segments",
    "topics": "Topics and alerts",
    "answers": "Answers",
    "followups": "Close the loop",
    "review": "Review",
}
"""URL name -> title, in menu order; the first is the landing page."""

SEGMENT_PREFIX = "seg."


@dataclass(frozen=True)
class ViewState:
    """What the user looks at: a page, the filters of every page, and page-local fields."""

    page: str = "overview"
    filters: Filters = field(default_factory=Filters)
    query: str = ""
    response_id: str = ""

    def to(self, page: str, **changes: Any) -> ViewState:
        """The same filters on another page, with filter fields changed (``themes=[...]`` ...)."""
        filters = replace(self.filters, **changes) if changes else self.filters
        return replace(self, page=page, filters=filters)


def _many(params: Mapping[str, Any], key: str) -> list[str]:
    """All values of a key: ``st.query_params`` gives lists via ``get_all``, dicts give str or list."""
    getter = getattr(params, "get_all", None)
    raw = getter(key) if getter is not None else params.get(key, [])
    values = [raw] if isinstance(raw, str) else list(raw or [])
    return [v for v in (str(x).strip() for x in values) if v]


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None  # a hand-edited link with a bad date shows everything rather than failing


def from_params(params: Mapping[str, Any], segment_columns: list[str] | None = None) -> ViewState:
    """Read the view state from URL parameters (unknown or malformed values are ignored)."""
    page = (_many(params, "page") or ["overview"])[0]
    start = _date((_many(params, "start") or [""])[0])
    end = _date((_many(params, "end") or [""])[0])
    kind = (_many(params, "type") or [None])[0]
    segments: dict[str, list[str]] = {}
    for key in list(params.keys()):
        if key.startswith(SEGMENT_PREFIX):
            column = key[len(SEGMENT_PREFIX) :]
            if segment_columns is None or column in segment_columns:
                values = _many(params, key)
                if values:
                    segments[column] = values
    topics = [int(t) for t in _many(params, "topic") if t.lstrip("-").isdigit()]
    sentiments = [s for s in _many(params, "sentiment") if s in ("negative", "neutral", "positive")]
    filters = Filters(
        start=start,
        end=end,
        survey_type=kind if kind in ("nps", "csat", "ces") else None,
        segments=segments,
        languages=_many(params, "lang"),
        themes=_many(params, "theme"),
        sentiments=sentiments,
        topics=topics,
    )
    return ViewState(
        page=page if page in PAGES else "overview",
        filters=filters,
        query=(_many(params, "q") or [""])[0],
        response_id=(_many(params, "rid") or [""])[0],
    )


def to_params(state: ViewState) -> dict[str, str | list[str]]:
    """URL parameters of a view state (empty filters are left out, so default links stay short)."""
    f = state.filters
    out: dict[str, str | list[str]] = {"page": state.page}
    if f.start:
        out["start"] = f.start.isoformat()[:10]
    if f.end:
        out["end"] = f.end.isoformat()[:10]
    if f.survey_type:
        out["type"] = f.survey_type
    for column, values in sorted(f.segments.items()):
        if values:
            out[SEGMENT_PREFIX + column] = [str(v) for v in values]
    for key, values in (
        ("lang", f.languages),
        ("theme", f.themes),
        ("sentiment", f.sentiments),
        ("topic", [str(t) for t in f.topics]),
    ):
        if values:
            out[key] = list(values)
    if state.query:
        out["q"] = state.query
    if state.response_id:
        out["rid"] = state.response_id
    return out


def link(state: ViewState) -> str:
    """A relative link (``?page=...&...``) to a view state."""
    return "?" + urlencode(to_params(state), doseq=True)
