"""The Streamlit app's frame: what it reads, the shared filters (in the URL), the page menu.

Imported only by ``app.py`` under ``streamlit run`` (and by AppTest in the bench), never by the library.

Safety rules every page follows: answer text reaches the browser only through ``st.table`` /
``st.dataframe`` / ``st.text`` / ``st.code`` (rendered as text, never as HTML or Markdown), and every
number comes from :mod:`pipeline.analysis` (the dashboard computes no statistic of its own).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import streamlit as st

from pipeline.analysis.filters import Filters
from pipeline.config import EnrichmentConfig, load_config
from pipeline.dashboard.edits import EditStore
from pipeline.dashboard.server import ENV_CONFIG, ENV_WAREHOUSE
from pipeline.dashboard.snapshot import open_for_dashboard, snapshot_key
from pipeline.dashboard.state import PAGES, SEGMENT_PREFIX, ViewState, from_params, link, to_params
from pipeline.warehouse.base import Warehouse

SENTIMENTS = ["negative", "neutral", "positive"]


@dataclass
class Ctx:
    """What a page needs: the config, the warehouse it reads, where edits go, the view state."""

    config: EnrichmentConfig
    wh: Warehouse
    store: EditStore
    state: ViewState
    segments: list[str]
    themes: list[str]

    @property
    def filters(self) -> Filters:
        """The filters of every page."""
        return self.state.filters

    key: tuple = ()
    """What the numbers are of: the snapshot's identity (a live warehouse: the current minute)."""

    def link(self, page: str, **changes: Any) -> str:
        """A link to ``page`` under the same filters (changed by ``changes``)."""
        return link(self.state.to(page, **changes))

    def analysis(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``pipeline.analysis.<name>(wh, *args, config=..., **kwargs)``, cached per snapshot and arguments.

        Streamlit runs the whole page again on every click (a radio, a filter, a link back): the same
        numbers of the same snapshot come from the cache instead of the warehouse. A new snapshot (a run
        ended) is a new key; a live warehouse (PostgreSQL) is read again at most a minute later.
        """
        signature = repr((name, args, sorted(kwargs.items())))
        return _analysis(self.key, signature, name, args, kwargs, self.wh, self.config)

    def analyses(self, calls: dict[str, tuple[str, tuple, dict]]) -> dict[str, Any]:
        """Several :meth:`analysis` calls at once (``{label: (name, args, kwargs)}``), run side by side.

        A snapshot is read-only, so its queries run on cursors of their own in parallel threads: while one
        query's statistics run in Python, the next one runs in the database.
        """
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(calls) or 1) as pool:
            futures = {
                label: pool.submit(self.analysis, name, *args, **kwargs)
                for label, (name, args, kwargs) in calls.items()
            }
            return {label: future.result() for label, future in futures.items()}


@st.cache_resource(max_entries=1)
def _config(path: str | None, warehouse: str) -> EnrichmentConfig:
    return load_config(path, warehouse=warehouse)


LIVE_TTL_S = 60
"""How long numbers of a live warehouse (no snapshot) are reused."""


@st.cache_data(max_entries=256, show_spinner=False)
def _analysis(
    key: tuple,
    signature: str,
    name: str,
    _args: tuple,
    _kwargs: dict,
    _wh: Warehouse,
    _config: EnrichmentConfig,
) -> Any:
    """One analysis call; cached on (``key``, ``signature``) only (the underscored arguments are not hashed)."""
    from pipeline import analysis

    return getattr(analysis, name)(_wh, *_args, config=_config, **_kwargs)


def cache_key(snapshot: tuple, warehouse: str) -> tuple:
    """The key numbers are cached under: the snapshot's identity, or for a live warehouse the minute."""
    from pipeline.dashboard.snapshot import duckdb_file

    if duckdb_file(warehouse) is None:
        return (*snapshot, int(time.time() // LIVE_TTL_S))
    return snapshot


_OPEN: dict[str, Any] = {"key": None, "wh": None}
_OPEN_LOCK = threading.Lock()


def _open(key: tuple, warehouse: str) -> Warehouse:
    """The warehouse the app reads; reopened when a run has published a new snapshot (a new key).

    The old connection is closed first: DuckDB shares one database instance per path within a process,
    so a new connection to the renamed-over path would otherwise still read the old file.
    """
    with _OPEN_LOCK:
        if _OPEN["key"] != key or _OPEN["wh"] is None:
            if _OPEN["wh"] is not None:
                _OPEN["wh"].close()
            _OPEN["wh"], _OPEN["key"] = None, None
            _OPEN["wh"] = open_for_dashboard(warehouse)
            _OPEN["key"] = key
        return _OPEN["wh"]


def _distinct(wh: Warehouse, config: EnrichmentConfig, column: str, limit: int = 200) -> list[str]:
    """The values of one column, for a filter's options (not a statistic: a list of choices)."""
    t = config.tables.enriched
    rows = wh.sql(
        f"SELECT DISTINCT CAST({wh._quote(column)} AS TEXT) AS v FROM {wh._qualified(t)} "  # noqa: SLF001
        f"WHERE {wh._quote(column)} IS NOT NULL ORDER BY 1 LIMIT {int(limit)}"  # noqa: SLF001
    )
    return [str(v) for v in rows["v"]]


@st.cache_data(max_entries=8, show_spinner=False)
def _options(key: tuple, warehouse: str, config_path: str | None) -> dict[str, list[str]]:
    """Filter options of one snapshot: segment values, languages, themes, topics."""
    from pipeline.analysis.segments import segment_columns

    config = _config(config_path, warehouse)
    wh = _open(key, warehouse)
    out: dict[str, list[str]] = {}
    t = config.tables
    if not wh.table_exists(t.enriched):
        return out
    for column in segment_columns(wh, config=config):
        out[SEGMENT_PREFIX + column] = _distinct(wh, config, column)
    out["lang"] = _distinct(wh, config, "language")
    themes: set[str] = set()
    if wh.table_exists(t.tags):
        themes |= set(_tag_names(wh, config))
    out["theme"] = sorted(themes | set(_taxonomy_names(config)))
    if wh.table_exists(t.topics):
        topics = wh.read(t.topics, ["topic_id", "label"]).sort_values("topic_id")
        out["topic"] = [f"{int(r.topic_id)}: {r.label}" for r in topics.itertuples() if int(r.topic_id) >= 0]
    return out


def _tag_names(wh: Warehouse, config: EnrichmentConfig) -> list[str]:
    t = config.tables.tags
    rows = wh.sql(
        f"SELECT DISTINCT tag FROM {wh._qualified(t)} WHERE tag IS NOT NULL UNION "  # noqa: SLF001
        f"SELECT DISTINCT parent_tag FROM {wh._qualified(t)} WHERE parent_tag IS NOT NULL"  # noqa: SLF001
    )
    return [str(v) for v in rows["tag"]]


def _taxonomy_names(config: EnrichmentConfig) -> list[str]:
    try:
        from pipeline.tagging.taxonomy import load_taxonomy

        return [tag.name for tag in load_taxonomy(config.tagger.taxonomy).tags]
    except Exception:  # the themes of the stored tags are enough to filter on
        return []


def _init_widgets(state: ViewState, options: dict[str, list[str]]) -> None:
    """Session state of the filter widgets from the URL, once per browser session."""
    if st.session_state.get("_from_url"):
        return
    f = state.filters
    st.session_state["_from_url"] = True
    st.session_state["w_page"] = PAGES[state.page]
    st.session_state["w_start"] = f.start
    st.session_state["w_end"] = f.end
    st.session_state["w_type"] = f.survey_type or "all"
    for key in options:
        if key.startswith(SEGMENT_PREFIX):
            chosen = f.segments.get(key[len(SEGMENT_PREFIX) :], [])
            st.session_state["w_" + key] = [v for v in chosen if v in options[key]]
    st.session_state["w_lang"] = [v for v in f.languages if v in options.get("lang", [])]
    st.session_state["w_theme"] = [v for v in f.themes if v in options.get("theme", [])]
    st.session_state["w_sentiment"] = list(f.sentiments)
    by_id = {o.split(":", 1)[0]: o for o in options.get("topic", [])}
    st.session_state["w_topic"] = [by_id[str(t)] for t in f.topics if str(t) in by_id]
    st.session_state["w_q"] = state.query
    st.session_state["w_rid"] = state.response_id


def _sidebar(state: ViewState, options: dict[str, list[str]]) -> ViewState:
    """The page menu and the filters; returns the state they now describe."""
    _init_widgets(state, options)
    sb = st.sidebar
    titles = list(PAGES.values())
    title = sb.radio("Page", titles, key="w_page")
    sb.markdown("**Filters** (every page)")
    start = sb.date_input("From", key="w_start", format="YYYY-MM-DD")
    end = sb.date_input("To", key="w_end", format="YYYY-MM-DD")
    kind = sb.selectbox("Survey type", ["all", "nps", "csat", "ces"], key="w_type")
    segments: dict[str, list[str]] = {}
    for key, values in options.items():
        if key.startswith(SEGMENT_PREFIX):
            column = key[len(SEGMENT_PREFIX) :]
            chosen = sb.multiselect(column, values, key="w_" + key)
            if chosen:
                segments[column] = chosen
    langs = sb.multiselect("Language", options.get("lang", []), key="w_lang")
    themes = sb.multiselect("Theme", options.get("theme", []), key="w_theme")
    sentiments = sb.multiselect("Sentiment", SENTIMENTS, key="w_sentiment")
    topics = sb.multiselect("Topic", options.get("topic", []), key="w_topic")
    filters = Filters(
        start=start or None,
        end=end or None,
        survey_type=None if kind == "all" else kind,
        segments=segments,
        languages=langs,
        themes=themes,
        sentiments=sentiments,
        topics=[int(t.split(":", 1)[0]) for t in topics],
    )
    page = next(k for k, v in PAGES.items() if v == title)
    return replace(state, page=page, filters=filters, query=st.session_state.get("w_q", state.query))


def _sync_url(state: ViewState) -> None:
    """Write the state into the URL (so the view can be shared), only when it changed."""
    wanted = to_params(state)
    current = {k: (st.query_params.get_all(k) if len(st.query_params.get_all(k)) > 1 else st.query_params[k])
               for k in st.query_params}  # fmt: skip
    if current != wanted:
        st.query_params.from_dict(wanted)


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as display text: numbers rounded as the report does, text made inert for Markdown.

    ``st.table`` renders cells as Markdown (HTML escaped, but links and images would work): answer
    text, labels and notes are backslash-escaped so that they show as the characters they are.
    """
    out = pd.DataFrame(index=range(len(frame)))
    for col in frame.columns:
        values = frame[col].reset_index(drop=True)
        if pd.api.types.is_bool_dtype(values):
            out[col] = values.map({True: "yes", False: ""})
        elif pd.api.types.is_float_dtype(values):
            spec = ".3g" if str(col).startswith("p_") or col == "p_value" else ".1f"
            out[col] = values.map(lambda x, spec=spec: "" if pd.isna(x) else format(float(x), spec))
        elif pd.api.types.is_integer_dtype(values):
            out[col] = values.astype(str)
        else:
            out[col] = values.map(_cell)
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    elif isinstance(value, pd.Timestamp):
        value = value.strftime("%Y-%m-%d %H:%M")
    return md_text(str(value))


def render_table(frame: pd.DataFrame, *, highlight: str | None = None, column: str | None = None) -> None:
    """A table of text (never HTML, never live Markdown); ``highlight``: a boolean column marking rows,
    ``column``: a column to highlight in every row."""
    mask = frame[highlight].fillna(False).astype(bool).to_numpy() if highlight in frame.columns else None
    shown = text_frame(frame.drop(columns=[highlight]) if mask is not None else frame)
    if len(shown) and (mask is not None or column in shown.columns):

        def paint(row: pd.Series) -> list[str]:
            return [
                "background-color: #fff3b0" if (mask is not None and mask[row.name]) or name == column else ""
                for name in row.index
            ]

        st.table(shown.style.apply(paint, axis=1))
    else:
        st.table(shown)


def drill(label: str, href: str) -> None:
    """A link to the answers behind a number (the label is ours, never answer text)."""
    st.markdown(f"[{md_text(label)}]({href})")


def md_text(text: str) -> str:
    """Text made inert for Markdown: every ASCII punctuation character backslash-escaped, no newlines."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in " ".join(str(text).split()))


_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~&$=:;\"'/")


def main() -> None:
    """Render one run of the app."""
    st.set_page_config(page_title="Feedback: CX workspace", layout="wide")
    warehouse = os.environ.get(ENV_WAREHOUSE)
    config_path = os.environ.get(ENV_CONFIG) or None
    if not warehouse:
        st.error("Start the dashboard with `feedback dashboard` (no warehouse given).")
        return
    config = _config(config_path, warehouse)
    key = snapshot_key(config.warehouse)
    try:
        wh = _open(key, config.warehouse)
    except Exception as exc:  # e.g. no snapshot yet: say what to do instead of a traceback
        st.error(str(exc))
        return
    options = _options(key, config.warehouse, config_path)
    segs = [k[len(SEGMENT_PREFIX) :] for k in options if k.startswith(SEGMENT_PREFIX)]
    state = from_params(st.query_params, segment_columns=segs)
    state = _sidebar(state, options)
    _sync_url(state)
    ctx = Ctx(
        config=config,
        wh=wh,
        store=EditStore(config),
        state=state,
        segments=segs,
        themes=options.get("theme", []),
        key=cache_key(key, config.warehouse),
    )
    from pipeline.dashboard import pages_analysis, pages_work

    render = {
        "overview": pages_analysis.overview,
        "themes": pages_analysis.themes,
        "segments": pages_analysis.segments,
        "topics": pages_analysis.topics,
        "answers": pages_work.answers,
        "followups": pages_work.followups,
        "review": pages_work.review,
    }[state.page]
    st.title(PAGES[state.page])
    render(ctx)
    # The last element of every page (a browser test waits for it): how fresh the numbers are.
    st.caption(
        f"Data as of {_as_of(config)}.", help="The last run's snapshot (DuckDB) or the live warehouse."
    )


def _as_of(config: EnrichmentConfig) -> str:
    from datetime import datetime

    from pipeline.dashboard.snapshot import duckdb_file, snapshot_path

    path = duckdb_file(config.warehouse)
    if path is None:
        return "now (live warehouse)"
    stamp = datetime.fromtimestamp(snapshot_path(path).stat().st_mtime)
    return f"the run that ended {stamp:%Y-%m-%d %H:%M}"
