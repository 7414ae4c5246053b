"""The rolling window the topic model is fitted on, and the capped sample a fit reads from it.

:func:`window_sample` is what a run and the weekly refit use: it reads the stored window page by page and
keeps only the ``topics.fit_sample`` candidates with the smallest content hashes, so its memory is bounded
by the cap and not by the window. :func:`topic_window` (the whole window, optionally with new texts first)
and :func:`fit_sample` (the same content-hash sample drawn from it) remain for callers that hold a window.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.topics.parts import content_sample
from pipeline.warehouse.base import Warehouse


def window_sample(wh: Warehouse, config: EnrichmentConfig, cap: int, page_size: int = 0) -> pd.DataFrame:
    """At most ``cap`` distinct answered texts of the stored window, chosen by content.

    The same texts as ``fit_sample(topic_window(wh, config), cap)`` (each text's hash decides, ties by the
    text), read page by page: only the ``2 * cap`` best candidates so far are held, never the window.

    Returns:
        Columns text, submitted_at, language and tags, in hash order; ``attrs["start"]`` holds the
        window's first instant (None when it is empty) and ``attrs["window_size"]`` the number of
        distinct texts in the window.
    """
    table = config.tables.enriched
    types = wh._column_types(table) if wh.table_exists(table) else {}
    if not {"response_id", "submitted_at", "text_redacted"} <= set(types):
        return _empty_window()
    q = wh._quote
    usable = f"{q('submitted_at')} IS NOT NULL AND TRIM({q('text_redacted')}) <> ''"
    if "is_non_answer" in types:
        usable = f"{q('is_non_answer')} = :no AND {usable}"
    end = wh._query(
        f"SELECT MAX({q('submitted_at')}) AS window_end FROM {wh._qualified(table)} WHERE {usable}",
        {"no": False},
        {"window_end": types["submitted_at"]},
    )["window_end"].iloc[0]
    end = _naive(end)
    if end is None:
        return _empty_window()
    start = end - timedelta(days=config.topics.window_days)
    cols = [c for c in ("response_id", "text_redacted", "submitted_at", "language", "tags") if c in types]
    key = wh._key_expr(q("response_id"), types["response_id"])
    size = page_size or max(config.batch_size, cap)  # few pages: each is a scan of the window
    seen: set[str] = set()
    best: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
    after = None
    while True:
        params: dict[str, Any] = {"no": False, "start": pd.Timestamp(start).to_pydatetime()}
        page_filter = ""
        if after is not None:
            page_filter, params["after"] = f" AND {key} > :after", after
        rows = wh._query(
            f"SELECT {', '.join(q(c) for c in cols)} FROM {wh._qualified(table)} WHERE {usable} AND "
            f"{q('submitted_at')} >= :start{page_filter} ORDER BY {key} LIMIT {int(size)}",
            params,
            {c: types[c] for c in cols},
        )
        if rows.empty:
            break
        times = _naive_utc(rows["submitted_at"])
        langs = rows["language"].tolist() if "language" in rows else [None] * len(rows)
        tags = rows["tags"].tolist() if "tags" in rows else [None] * len(rows)
        for text, at, lang, tag in zip(rows["text_redacted"].astype(str), times, langs, tags, strict=True):
            if not text.strip():
                continue
            digest = _content_key(text)
            if digest in seen:
                continue  # a repeated text: the first one read stands for it
            seen.add(digest)
            best[(digest, text)] = (at, lang, tag)
        if len(best) > 2 * cap:
            best = dict(sorted(best.items())[:cap])
        if len(rows) < size:
            break
        after = str(rows["response_id"].iloc[-1])
    chosen = sorted(best.items())[:cap]
    sample = pd.DataFrame(
        {
            "text": [text for (_, text), _ in chosen],
            "submitted_at": np.asarray([v[0] for _, v in chosen], dtype="datetime64[ns]"),
            "language": [v[1] for _, v in chosen],
            "tags": [v[2] for _, v in chosen],
        }
    )
    sample.attrs["start"] = pd.Timestamp(start)
    sample.attrs["window_size"] = len(seen)
    return sample


def _content_key(text: str) -> str:
    """The hash :func:`pipeline.topics.parts.content_sample` orders texts by."""
    return hashlib.blake2b(text.encode("utf-8", errors="replace"), digest_size=8).hexdigest()


def topic_window(
    wh: Warehouse,
    config: EnrichmentConfig,
    new_texts: list[str] | None = None,
    new_times: pd.Series | list | None = None,
    new_languages: list[str] | None = None,
) -> pd.DataFrame:
    """The distinct answered texts of the rolling window: new ones first, then stored ones.

    Returns:
        Columns text, submitted_at, language (None when unknown) and tags (None for new texts);
        ``attrs["start"]`` holds the window's first instant (None when the window is empty), from
        which :func:`reassign_rows` reads the stored rows of the window.
    """
    span = timedelta(days=config.topics.window_days)
    n_new = len(new_texts or [])
    new = pd.DataFrame(
        {
            "text": list(new_texts or []),
            "submitted_at": _naive_utc(list(new_times) if new_times is not None and n_new else []),
            "language": list(new_languages) if new_languages is not None and n_new else [None] * n_new,
            "tags": [None] * n_new,
        }
    )
    new = _usable(new)
    t = config.tables
    stored_max = _naive(wh.max_value(t.enriched, "submitted_at")) if wh.table_exists(t.enriched) else None
    ends = [x for x in (new["submitted_at"].max() if len(new) else None, stored_max) if x is not None]
    if not ends:
        return _empty_window()
    # Only the stored rows of the window leave the database (a SQL range, not the whole table). The
    # window ends at the latest usable answer; when the latest stored rows are non-answers, that end
    # is earlier than the table's maximum, and the (rare) extra stretch is read in a second range.
    read_from: pd.Timestamp | None = max(ends) - span

    def gather(since: pd.Timestamp | None) -> pd.DataFrame:
        if stored_max is None:
            return new
        return _usable(pd.concat([new, _stored_window(wh, config, since)], ignore_index=True))

    window = gather(read_from)
    if window.empty and stored_max is not None:  # nothing usable lately: the latest usable is older
        read_from = None
        window = gather(None)
    if window.empty:
        return _empty_window()
    start = window["submitted_at"].max() - span
    if read_from is not None and start < read_from:
        window = gather(start)
    window = window[window["submitted_at"] >= start]
    window = window.drop_duplicates("text", keep="first").reset_index(drop=True)
    window.attrs["start"] = pd.Timestamp(start)
    return window


def _naive(value: Any) -> pd.Timestamp | None:
    """A timestamp as naive UTC (how the window compares times), or None."""
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _naive_utc(values: Any) -> np.ndarray:
    """Times as naive UTC datetime64 (the warehouse's convention); naive inputs are taken as UTC."""
    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True).dt.tz_localize(None).to_numpy()


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a non-empty text and a submission time."""
    return frame[frame["text"].astype(str).str.strip().ne("") & frame["submitted_at"].notna()]


def _empty_window() -> pd.DataFrame:
    window = pd.DataFrame(columns=["text", "submitted_at", "language", "tags"])
    window.attrs["start"] = None
    return window


def _stored_window(wh: Warehouse, config: EnrichmentConfig, start: pd.Timestamp | None) -> pd.DataFrame:
    """The stored answered rows submitted at or after ``start`` (all when None), as window columns."""
    t = config.tables
    have = set(wh.columns(t.enriched))
    cols = [c for c in ("text_redacted", "submitted_at", "is_non_answer", "language", "tags") if c in have]
    stored = wh.read_range(t.enriched, "submitted_at", start=start, columns=cols)
    stored = stored[~stored["is_non_answer"].astype(bool)]
    return pd.DataFrame(
        {
            "text": stored["text_redacted"].astype(str).to_numpy(),
            "submitted_at": _naive_utc(stored["submitted_at"]),
            "language": stored["language"].to_numpy() if "language" in stored else None,
            "tags": stored["tags"].to_numpy() if "tags" in stored else None,
        }
    )


def fit_sample(window: pd.DataFrame, cap: int) -> pd.DataFrame:
    """At most ``cap`` texts of the window, chosen by content (the same texts whatever their order)."""
    if len(window) <= cap:
        return window
    keep = np.sort(content_sample(window["text"].astype(str).tolist(), cap))
    sample = window.iloc[keep].reset_index(drop=True)
    sample.attrs["start"] = window.attrs.get("start")
    return sample
