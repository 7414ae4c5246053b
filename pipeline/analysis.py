"""Root-cause analysis of enriched survey answers: CX scores, theme impact, segments, trends, call-backs.

Plain typed functions over DataFrames read from the warehouse by the caller. Nothing here does I/O and
no function mutates its inputs.

Scores and survey types:
    * NPS (0-10): % promoters (9-10) minus % detractors (0-6), in -100..100.
    * CSAT (1-5): % satisfied (4-5), in 0..100.
    * CES (1-7): the mean score. We assume the CES 2.0 wording ("the company made it easy for me"), where
      higher is better, so that a negative impact always means "drags the score down".

    Every one of the three is the mean of a per-response value (+100/0/-100 for NPS, 100/0 for CSAT, the
    score itself for CES). That is what makes "the score without a tag" cheap to compute for every tag at
    once, and it is why :func:`theme_impact` works for all three.

Mixed survey types:
    A score is only meaningful within one survey type, so everything tied to a score (theme impact,
    segment scores, score trends, topic scores) is computed on the rows of *one* type: the one you pass as
    ``survey_type``, or by default the dominant type (most rows; ties go nps, csat, ces). Rows of other
    types are left out of those tables (logged at INFO). Counts that do not involve a score (languages,
    sentiment, tagged share, the segment x tag matrix, the close-the-loop list) use every row; the summary
    also reports each type's overall score in ``overall_by_type``. The impact columns keep the names
    ``nps_with``/``nps_impact`` whatever the type; :attr:`RootCauseSummary.score_type` says which score
    they hold.

"Detractors" are NPS 0-6, CSAT 1-2 and CES 1-3 (the bottom of each scale).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, SchemaError, missing_columns
from pipeline.schema import ENRICHED_COLUMNS, SURVEY_TYPES

log = logging.getLogger(__name__)

DETRACTOR_MAX: dict[str, float] = {"nps": 6, "csat": 2, "ces": 3}
"""Highest score that still counts as a detractor, per survey type."""

NPS_PROMOTER_MIN = 9
CSAT_SATISFIED_MIN = 4
SCORE_NAMES: dict[str, str] = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}

THEME_IMPACT_COLUMNS = [
    "tag",
    "parent_tag",
    "volume",
    "share",
    "nps_with",
    "nps_impact",
    "detractor_share",
    "mean_sentiment",
    "negative_share",
]
SEGMENT_COLUMNS = [
    "segment",
    "value",
    "n",
    "n_answered",
    "nps",
    "nps_delta",
    "mean_sentiment",
    "top_negative_tag",
    "top_negative_impact",
]
SCORE_TREND_COLUMNS = ["period", "n", "n_answered", "nps"]
TREND_COLUMNS = ["period", "tag", "count", "share", "n", "nps"]
TOPIC_SUMMARY_COLUMNS = [
    "topic_id",
    "label",
    "keywords",
    "size",
    "n",
    "share",
    "nps",
    "mean_sentiment",
    "negative_share",
]

# Auto-detected segments: names that look like identifiers, free text, contact details or timestamps.
_NOT_SEGMENT_EXACT = {"id", "comment", "text", "email", "phone", "name", "first_name", "last_name"}
_NOT_SEGMENT_PARTS = ("email", "comment", "text", "phone")
_NOT_SEGMENT_SUFFIXES = ("_id", "_ids", "_at", "_uuid", "_key")
SEGMENT_MAX_VALUES = 30

_REQUIRED = ["response_id", "survey_type", "score"]
_TYPE_ORDER = list(SURVEY_TYPES)  # tie-break order for the dominant type: nps, csat, ces


# --------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------


def _as_scores(scores: Iterable[float] | pd.Series | np.ndarray, survey_type: str) -> np.ndarray:
    """Return ``scores`` as a float array without NaN, checked against the type's scale."""
    if isinstance(scores, pd.DataFrame):
        raise SchemaError(
            f"{survey_type}() expects a column of scores, not a DataFrame: pass df['score'] "
            "(or use cx_score(df) to pick the score by survey_type)."
        )
    if isinstance(scores, str | bytes):
        raise SchemaError(f"{survey_type}() expects a list of numbers, got a string: {scores!r}.")
    series = pd.Series(list(scores) if not isinstance(scores, pd.Series | np.ndarray) else scores)
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{survey_type}() expects numeric scores: {exc}") from exc
    values = values[~np.isnan(values)]
    lo, hi = SURVEY_TYPES[survey_type]
    bad = values[(values < lo) | (values > hi)]
    if bad.size:
        raise SchemaError(
            f"{survey_type}() expects scores between {lo:g} and {hi:g}; found {bad.size} outside "
            f"(e.g. {sorted(set(bad.tolist()))[:5]}). Check the survey_type of these rows, or use "
            f"{' / '.join(f'{t}()' for t in SURVEY_TYPES if t != survey_type)} for other scales."
        )
    return values


def _values(survey_type: str, scores: np.ndarray) -> np.ndarray:
    """Per-response value whose mean is the score of ``survey_type`` (NaN stays NaN)."""
    if survey_type == "nps":
        out = np.where(
            scores >= NPS_PROMOTER_MIN, 100.0, np.where(scores <= DETRACTOR_MAX["nps"], -100.0, 0.0)
        )
    elif survey_type == "csat":
        out = np.where(scores >= CSAT_SATISFIED_MIN, 100.0, 0.0)
    else:
        out = scores.astype(float)
    return np.where(np.isnan(scores), np.nan, out)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def nps(scores: Iterable[float] | pd.Series | np.ndarray) -> float:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6).

    Args:
        scores: Scores on the 0-10 scale; NaN values are ignored.

    Returns:
        A float in -100..100, or NaN when there are no scores.

    Raises:
        SchemaError: when a score is not numeric or lies outside 0..10.
    """
    return _mean(_values("nps", _as_scores(scores, "nps")))


def csat(scores: Iterable[float] | pd.Series | np.ndarray) -> float:
    """Customer satisfaction: % of scores that are 4 or 5 on the 1-5 scale (0..100; NaN for none)."""
    return _mean(_values("csat", _as_scores(scores, "csat")))


def ces(scores: Iterable[float] | pd.Series | np.ndarray) -> float:
    """Customer effort score: the mean score on the 1-7 scale (higher is easier; NaN for none)."""
    return _mean(_as_scores(scores, "ces"))


_SCORE_FUNCS = {"nps": nps, "csat": csat, "ces": ces}


def score_breakdown(scores: Iterable[float] | pd.Series | np.ndarray, survey_type: str) -> dict[str, float]:
    """The score of one survey type with its parts (shares in %), for headlines.

    Args:
        scores: Scores of that type; NaN values are ignored.
        survey_type: One of ``nps``, ``csat``, ``ces``.

    Returns:
        ``{"score", "n", "detractor_share"}`` plus ``promoter_share``/``passive_share`` for NPS and
        ``satisfied_share`` for CSAT. Scores and shares are NaN when there are no scores.
    """
    survey_type = _check_type(survey_type)
    values = _as_scores(scores, survey_type)
    n = int(values.size)

    def pct(mask: np.ndarray) -> float:
        return float(100.0 * mask.mean()) if n else float("nan")

    out: dict[str, float] = {"score": _SCORE_FUNCS[survey_type](values), "n": n}
    if survey_type == "nps":
        out["promoter_share"] = pct(values >= NPS_PROMOTER_MIN)
        out["passive_share"] = pct((values > DETRACTOR_MAX["nps"]) & (values < NPS_PROMOTER_MIN))
    elif survey_type == "csat":
        out["satisfied_share"] = pct(values >= CSAT_SATISFIED_MIN)
    out["detractor_share"] = pct(values <= DETRACTOR_MAX[survey_type])
    return out


def _check_type(survey_type: str) -> str:
    st = str(survey_type).strip().lower()
    if st not in SURVEY_TYPES:
        raise ConfigError(f"Unknown survey_type {survey_type!r}; expected one of {list(SURVEY_TYPES)}.")
    return st


def dominant_survey_type(enriched: pd.DataFrame) -> str:
    """The survey type with the most rows (ties: nps, csat, ces); ``nps`` for an empty frame."""
    if len(enriched) == 0 or "survey_type" not in enriched.columns:
        return "nps"
    counts = enriched["survey_type"].astype("string").str.strip().str.lower().value_counts()
    counts = counts[counts.index.isin(list(SURVEY_TYPES))]
    if counts.empty:
        return "nps"
    best = counts.max()
    return next(t for t in _TYPE_ORDER if counts.get(t, 0) == best)


def cx_score(enriched: pd.DataFrame, survey_type: str | None = None) -> float:
    """The CX score of a frame, picked by its ``survey_type`` column.

    NPS for ``nps`` rows, CSAT for ``csat`` rows, CES for ``ces`` rows. Scores of different types cannot
    be pooled, so only the rows of one type count: ``survey_type`` when given, otherwise the dominant
    type (see :func:`dominant_survey_type`). Use :func:`cx_scores` for every type at once.

    Args:
        enriched: A frame with ``survey_type`` and ``score`` columns.
        survey_type: Force one type; None picks the dominant one.

    Returns:
        The score, or NaN when there are no rows of that type.
    """
    df = _prepare(enriched, "cx_score")
    st = _check_type(survey_type) if survey_type else dominant_survey_type(df)
    return _SCORE_FUNCS[st](df.loc[df["survey_type"] == st, "score"])


def cx_scores(enriched: pd.DataFrame) -> dict[str, float]:
    """The score of every survey type present in ``enriched``: ``{"nps": 12.5, "csat": 80.0}``."""
    df = _prepare(enriched, "cx_scores")
    return {
        st: _SCORE_FUNCS[st](df.loc[df["survey_type"] == st, "score"])
        for st in _TYPE_ORDER
        if (df["survey_type"] == st).any()
    }


# --------------------------------------------------------------------------------------------------
# Input preparation (one normalised working copy; the caller's frame is never touched)
# --------------------------------------------------------------------------------------------------


def _as_tag_list(value: Any) -> list[str]:
    """Normalise one ``tags`` cell (list, array, "a|b" string, None, NaN) to a list of unique strings."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[Any] = value.split("|")
    elif isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        items = value
    elif isinstance(value, float) and math.isnan(value):
        return []
    else:
        items = [value]
    out: list[str] = []
    for item in items:
        if item is None or (isinstance(item, float) and math.isnan(item)):
            continue
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _prepare(enriched: pd.DataFrame, what: str) -> pd.DataFrame:
    """Validate ``enriched`` and return a normalised working frame (a new object).

    Normalises ``survey_type`` (lower case), ``score`` (float), ``submitted_at`` (naive UTC datetime),
    ``is_non_answer`` (bool), ``sentiment_*`` and ``tags`` (list[str]); adds the private columns ``_rid``
    (the row position, the join key with the tags table), ``_v`` (per-response score value, see the
    module docstring) and ``_detractor``. Missing optional columns are added empty; a 0-row frame may
    lack any column.
    """
    if not isinstance(enriched, pd.DataFrame):
        raise SchemaError(
            f"{what}() expects a pandas DataFrame of enriched responses, got {type(enriched).__name__}."
        )
    if len(enriched) and any(c not in enriched.columns for c in _REQUIRED):
        raise missing_columns(f"{what}()", _REQUIRED, list(enriched.columns))
    # A new frame: assigning columns below never reaches the caller's frame.
    df = enriched.reset_index(drop=True)
    n = len(df)
    if df.columns.has_duplicates:
        raise SchemaError(f"{what}(): duplicate column names {sorted(df.columns[df.columns.duplicated()])}.")
    if n and df["response_id"].duplicated().any():
        dup = df.loc[df["response_id"].duplicated(), "response_id"].head(5).tolist()
        log.warning(
            "%s(): %d duplicate response_id(s) (e.g. %s); keeping the last row of each",
            what,
            int(df["response_id"].duplicated().sum()),
            dup,
        )
        df = df.drop_duplicates("response_id", keep="last").reset_index(drop=True)
        n = len(df)

    def col(name: str, default: Any) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([default] * n, index=df.index, dtype=object)

    df["response_id"] = col("response_id", None)
    st = (
        col("survey_type", "nps").astype(object).map(lambda v: str(v).strip().lower() if v is not None else v)
    )
    unknown = sorted({str(v) for v in st.dropna().unique()} - set(SURVEY_TYPES))
    if unknown:
        raise SchemaError(
            f"{what}(): unknown survey_type value(s) {unknown}; expected one of {list(SURVEY_TYPES)}. "
            "Fix the source column or set source.default_survey_type in the config."
        )
    df["survey_type"] = st
    try:
        score = pd.to_numeric(col("score", np.nan), errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{what}(): the score column must be numeric: {exc}") from exc
    for t, (lo, hi) in SURVEY_TYPES.items():
        bad = (st == t) & ((score < lo) | (score > hi))
        if bad.any():
            raise SchemaError(
                f"{what}(): {int(bad.sum())} {t} score(s) outside {lo:g}..{hi:g} "
                f"(e.g. response_id {df.loc[bad, 'response_id'].head(3).tolist()}). Such rows should have "
                "been quarantined upstream; check the survey_type and score columns."
            )
    df["score"] = score
    submitted = pd.to_datetime(col("submitted_at", pd.NaT), errors="coerce", utc=True)
    df["submitted_at"] = submitted.dt.tz_convert(None)
    df["is_non_answer"] = col("is_non_answer", False).fillna(False).astype(bool)
    df["sentiment_score"] = pd.to_numeric(col("sentiment_score", np.nan), errors="coerce").astype(float)
    df["sentiment_label"] = col("sentiment_label", None).astype(object).where(lambda s: s.notna(), None)
    df["tags"] = col("tags", None).map(_as_tag_list).astype(object) if n else pd.Series([], dtype=object)
    # Row position as the join key: int joins are fast, and response ids of any dtype (int in one table,
    # str in another) are matched by their text in _long_tags.
    df["_rid"] = np.arange(n, dtype=np.int64)
    values = np.full(n, np.nan)
    detractor = np.zeros(n, dtype=bool)
    for t in SURVEY_TYPES:
        mask = (st == t).to_numpy()
        if mask.any():
            s = score.to_numpy()[mask]
            values[mask] = _values(t, s)
            detractor[mask] = s <= DETRACTOR_MAX[t]  # NaN compares False
    df["_v"] = values
    df["_detractor"] = detractor
    return df


def _long_tags(df: pd.DataFrame, tags: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (response, tag) for the responses of ``df``.

    From the ``tags`` table when given (it is then the truth, and carries parent tags and per-tag
    sentiment), otherwise from ``df['tags']``. Columns: ``_rid``, ``tag``, ``parent_tag``,
    ``tag_sentiment_score``, ``tag_sentiment_label``.
    """
    cols = ["_rid", "tag", "parent_tag", "tag_sentiment_score", "tag_sentiment_label"]
    if tags is None:
        if len(df) == 0:
            return _empty(cols).astype({"_rid": np.int64, "tag_sentiment_score": float})
        ex = df[["_rid", "tags"]].explode("tags").dropna(subset=["tags"])
        return pd.DataFrame(
            {
                "_rid": ex["_rid"].to_numpy(dtype=np.int64),
                "tag": ex["tags"].astype(str).to_numpy(dtype=object),
                "parent_tag": None,
                "tag_sentiment_score": np.nan,
                "tag_sentiment_label": None,
            }
        )
    if not isinstance(tags, pd.DataFrame):
        raise SchemaError(
            f"tags must be the long-form tags DataFrame (response_id, tag, ...), got {type(tags).__name__}."
        )
    if len(tags) and any(c not in tags.columns for c in ("response_id", "tag")):
        raise missing_columns("tags table", ["response_id", "tag"], list(tags.columns))
    n = len(tags)

    def col(name: str, default: Any) -> pd.Series:
        return (
            tags[name] if name in tags.columns else pd.Series([default] * n, index=tags.index, dtype=object)
        )

    # Match ids by their text so that an int id in one table finds a str id in the other.
    position = pd.Index(df["response_id"].astype(str).to_numpy(dtype=object)).get_indexer(
        col("response_id", None).astype(str).to_numpy(dtype=object)
    )
    out = pd.DataFrame(
        {
            "_rid": position,
            "tag": col("tag", None).to_numpy(dtype=object),
            "parent_tag": col("parent_tag", None).astype(object).where(lambda s: s.notna(), None).to_numpy(),
            "tag_sentiment_score": pd.to_numeric(col("sentiment_score", np.nan), errors="coerce")
            .astype(float)
            .to_numpy(),
            "tag_sentiment_label": col("sentiment_label", None)
            .astype(object)
            .where(lambda s: s.notna(), None)
            .to_numpy(),
        }
    )
    out = out[out["tag"].notna()]
    out["tag"] = out["tag"].astype(str).str.strip()
    out = out[(out["tag"] != "") & (out["_rid"] >= 0)]
    out["_rid"] = df["_rid"].to_numpy(dtype=np.int64)[out["_rid"].to_numpy()]
    return out.drop_duplicates(["_rid", "tag"], keep="last").reset_index(drop=True)


def _with_tag_lists(df: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``tags`` column rebuilt from the long table (used when a tags table is given)."""
    lists = long.groupby("_rid", sort=False)["tag"].agg(list)
    out = df.copy()
    out["tags"] = out["_rid"].map(lists).map(lambda v: v if isinstance(v, list) else []).astype(object)
    return out


def _subset_type(df: pd.DataFrame, survey_type: str | None, what: str) -> tuple[pd.DataFrame, str]:
    st = _check_type(survey_type) if survey_type else dominant_survey_type(df)
    mask = df["survey_type"] == st
    if len(df) and not mask.all():
        log.info(
            "%s(): using the %d %s row(s); %d row(s) of other survey types are analysed separately",
            what,
            int(mask.sum()),
            st,
            int((~mask).sum()),
        )
    return df[mask], st


# --------------------------------------------------------------------------------------------------
# Theme impact
# --------------------------------------------------------------------------------------------------


def _theme_impact(df: pd.DataFrame, long: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Theme impact on an already prepared frame of one survey type."""
    if len(df) == 0 or len(long) == 0:
        return _empty(THEME_IMPACT_COLUMNS)
    values = df["_v"]
    total, scored = float(values.sum()), int(values.count())
    overall = total / scored if scored else float("nan")
    n_answered = int((~df["is_non_answer"]).sum())
    resp = df[["_rid", "_v", "_detractor", "sentiment_score", "sentiment_label"]].copy()
    resp["_det_scored"] = resp["_detractor"].where(resp["_v"].notna()).astype(float)
    lt = long.merge(resp, on="_rid", how="inner")
    if len(lt) == 0:
        return _empty(THEME_IMPACT_COLUMNS)
    # Per-tag (aspect) sentiment where the tagger wrote one, otherwise the whole response's.
    lt["_sent"] = lt["tag_sentiment_score"].astype(float).fillna(lt["sentiment_score"])
    label = lt["tag_sentiment_label"].where(lt["tag_sentiment_label"].notna(), lt["sentiment_label"])
    lt["_lab_known"] = label.notna()
    lt["_neg"] = (label == "negative") & lt["_lab_known"]
    g = lt.groupby("tag", sort=False)
    volume = g.size()
    s_tag = g["_v"].sum()
    c_tag = g["_v"].count()
    rest = scored - c_tag
    with np.errstate(divide="ignore", invalid="ignore"):
        nps_with = (s_tag / c_tag).where(c_tag > 0)
        nps_without = ((total - s_tag) / rest).where(rest > 0)
    known = g["_lab_known"].sum()
    out = pd.DataFrame(
        {
            "tag": volume.index.astype(object),
            "parent_tag": g["parent_tag"].first().reindex(volume.index).astype(object).to_numpy(),
            "volume": volume.to_numpy(dtype=int),
            "share": (volume / n_answered).to_numpy(dtype=float) if n_answered else np.nan,
            "nps_with": nps_with.to_numpy(dtype=float),
            "nps_impact": (overall - nps_without).to_numpy(dtype=float),
            "detractor_share": g["_det_scored"].mean().to_numpy(dtype=float),
            "mean_sentiment": g["_sent"].mean().to_numpy(dtype=float),
            "negative_share": (g["_neg"].sum() / known.where(known > 0)).to_numpy(dtype=float),
        }
    )
    out["parent_tag"] = out["parent_tag"].where(out["parent_tag"].notna(), None)
    out = out[out["volume"] >= min_count]
    out = out.sort_values(["nps_impact", "volume", "tag"], ascending=[True, False, True], na_position="last")
    return out.reset_index(drop=True)


def theme_impact(
    enriched: pd.DataFrame,
    tags: pd.DataFrame | None = None,
    min_count: int = 5,
    survey_type: str | None = None,
) -> pd.DataFrame:
    """How much each tag (theme) moves the CX score.

    ``nps_impact = NPS(all) - NPS(all responses without the tag)``: the points the score would gain if
    the theme's responses were gone, with the sign flipped, so a negative value means the tag drags the
    score down. "All" is every scored response of the analysed survey type (non-answers included, as in
    the headline score); they can carry no tag, so they always sit in the "without" group.

    Args:
        enriched: Enriched responses (``response_id``, ``survey_type``, ``score``, ``is_non_answer``,
            ``sentiment_*``, ``tags``).
        tags: Optional long-form tags table; when given it replaces ``enriched['tags']`` and supplies
            ``parent_tag`` and per-tag (aspect) sentiment.
        min_count: Drop tags on fewer responses than this.
        survey_type: Analyse the rows of this type; None picks the dominant type.

    Returns:
        One row per tag: ``tag``, ``parent_tag``, ``volume`` (responses with the tag), ``share`` (of
        answered responses), ``nps_with`` (score of the responses with the tag), ``nps_impact``,
        ``detractor_share`` (0..1, of scored tagged responses), ``mean_sentiment`` (per-tag sentiment
        where available, else the response's), ``negative_share`` (0..1); sorted by ``nps_impact``
        ascending (worst first). For CSAT/CES rows the ``nps_*`` columns hold CSAT/CES.
    """
    df = _prepare(enriched, "theme_impact")
    df, _ = _subset_type(df, survey_type, "theme_impact")
    return _theme_impact(df, _long_tags(df, tags), min_count)


# --------------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------------


def _is_candidate_dtype(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype)


def detect_segments(enriched: pd.DataFrame, max_values: int = SEGMENT_MAX_VALUES) -> list[str]:
    """Columns of ``enriched`` that look like segments (channel, region, plan, ...).

    A segment is a column outside :data:`pipeline.schema.ENRICHED_COLUMNS` with a text or categorical
    dtype and 2..``max_values`` distinct values. Left out: identifiers (``id``, ``*_id``, ``*_key``,
    ``*_uuid``), timestamps stored as text (``*_at``), free text and contact details (names containing
    ``text``, ``comment``, ``email``, ``phone``; ``name``), columns holding lists, and columns where every
    value is distinct (an identifier under another name).

    Args:
        enriched: The enriched responses.
        max_values: Most distinct values a segment may have.

    Returns:
        Column names in frame order.
    """
    out: list[str] = []
    known = set(ENRICHED_COLUMNS) | {"comment"}
    for name in enriched.columns:
        if not isinstance(name, str) or name in known or name.startswith("_"):
            continue
        low = name.lower()
        if (
            low in _NOT_SEGMENT_EXACT
            or low.endswith(_NOT_SEGMENT_SUFFIXES)
            or any(part in low for part in _NOT_SEGMENT_PARTS)
        ):
            continue
        s = enriched[name]
        if not _is_candidate_dtype(s):
            continue
        try:
            distinct = int(s.nunique(dropna=True))
        except TypeError:  # unhashable cells (lists, dicts): not a segment
            continue
        non_null = int(s.notna().sum())
        if 2 <= distinct <= max_values and not (non_null > 2 and distinct == non_null):
            out.append(name)
    return out


def _segment_breakdown(
    df: pd.DataFrame, long: pd.DataFrame, segments: Sequence[str], min_count: int, tag_min_count: int
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    overall = float(df["_v"].mean()) if df["_v"].notna().any() else float("nan")
    for seg in segments:
        if seg not in df.columns:
            raise SchemaError(
                f"segment_breakdown(): no column {seg!r}; segment columns available: {detect_segments(df)}."
            )
        # Only the columns the scores need: grouping a frame with free text in it is slow.
        slim = df[[seg, "_rid", "_v", "_detractor", "is_non_answer", "sentiment_score", "sentiment_label"]]
        for value, part in slim.groupby(seg, sort=True, dropna=True, observed=True):
            if len(part) < min_count:
                continue
            score = float(part["_v"].mean()) if part["_v"].notna().any() else float("nan")
            answered = part[~part["is_non_answer"]]
            impact = _theme_impact(part, long[long["_rid"].isin(part["_rid"].to_numpy())], tag_min_count)
            worst = impact[impact["nps_impact"] < 0].head(1)
            rows.append(
                {
                    "segment": seg,
                    "value": str(value),
                    "n": len(part),
                    "n_answered": len(answered),
                    "nps": score,
                    "nps_delta": score - overall,
                    "mean_sentiment": float(answered["sentiment_score"].mean()) if len(answered) else np.nan,
                    "top_negative_tag": worst["tag"].iloc[0] if len(worst) else None,
                    "top_negative_impact": float(worst["nps_impact"].iloc[0]) if len(worst) else np.nan,
                }
            )
    if not rows:
        return _empty(SEGMENT_COLUMNS)
    out = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    order = {s: i for i, s in enumerate(segments)}
    out["_o"] = out["segment"].map(order)
    out = out.sort_values(["_o", "nps", "value"], na_position="last").drop(columns="_o")
    return out.reset_index(drop=True)


def segment_breakdown(
    enriched: pd.DataFrame,
    segments: Sequence[str],
    min_count: int = 10,
    tags: pd.DataFrame | None = None,
    tag_min_count: int = 3,
    survey_type: str | None = None,
) -> pd.DataFrame:
    """Score, sentiment and worst theme per value of each segment column.

    Args:
        enriched: Enriched responses with the segment columns.
        segments: Segment column names (see :func:`detect_segments`).
        min_count: Leave out segment values with fewer responses than this.
        tags: Optional long-form tags table (see :func:`theme_impact`).
        tag_min_count: A tag needs at least this many responses within a segment value to be named its
            top negative tag (guards against one-response themes).
        survey_type: Analyse the rows of this type; None picks the dominant type.

    Returns:
        One row per (segment, value): ``segment``, ``value`` (as text), ``n``, ``n_answered``, ``nps``,
        ``nps_delta`` (vs. the overall score), ``mean_sentiment`` (answered responses),
        ``top_negative_tag`` (the tag with the most negative impact within that value, None when no tag
        drags it down) and ``top_negative_impact``; in segment order, worst value first.
    """
    if isinstance(segments, str):
        segments = [segments]
    df = _prepare(enriched, "segment_breakdown")
    df, _ = _subset_type(df, survey_type, "segment_breakdown")
    return _segment_breakdown(df, _long_tags(df, tags), list(segments), min_count, tag_min_count)


def _tag_segment_matrix(
    df: pd.DataFrame, long: pd.DataFrame, segment: str, min_count: int, max_tags: int | None
) -> pd.DataFrame:
    if segment not in df.columns:
        raise SchemaError(
            f"tag_segment_matrix(): no column {segment!r}; segment columns available: {detect_segments(df)}."
        )
    answered = df[~df["is_non_answer"] & df[segment].notna()]
    if len(answered) == 0 or len(long) == 0:
        return pd.DataFrame(index=pd.Index([], name=segment))
    key = answered[["_rid", segment]].copy()
    key[segment] = key[segment].astype(str)
    sizes = key.groupby(segment).size()
    sizes = sizes[sizes >= min_count]
    lt = long[["_rid", "tag"]].merge(key, on="_rid", how="inner")
    if len(lt) == 0 or len(sizes) == 0:
        return pd.DataFrame(index=pd.Index([], name=segment))
    order = lt["tag"].value_counts()
    order = order.sort_index().sort_values(ascending=False, kind="stable")  # volume desc, then name
    cols = list(order.index[:max_tags] if max_tags else order.index)
    counts = pd.crosstab(lt[segment], lt["tag"]).reindex(index=sizes.index, columns=cols, fill_value=0)
    out = counts.div(sizes, axis=0).astype(float)
    out.index.name = segment
    out.columns.name = "tag"
    return out


def tag_segment_matrix(
    enriched: pd.DataFrame,
    segment: str,
    tags: pd.DataFrame | None = None,
    min_count: int = 1,
    max_tags: int | None = None,
) -> pd.DataFrame:
    """Share of answered responses carrying each tag, per value of one segment column (for a heatmap).

    Uses every survey type (a share involves no score).

    Args:
        enriched: Enriched responses with the segment column.
        segment: The segment column.
        tags: Optional long-form tags table (see :func:`theme_impact`).
        min_count: Leave out segment values with fewer answered responses than this.
        max_tags: Keep only the most frequent tags.

    Returns:
        A frame indexed by segment value (as text), one column per tag (most frequent first), values
        0..1. Empty when there are no answered responses or no tags.
    """
    df = _prepare(enriched, "tag_segment_matrix")
    return _tag_segment_matrix(df, _long_tags(df, tags), segment, min_count, max_tags)


# --------------------------------------------------------------------------------------------------
# Trends
# --------------------------------------------------------------------------------------------------


def _periods(submitted: pd.Series, freq: str) -> pd.Series:
    try:
        return submitted.dt.to_period(freq).dt.start_time
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"trends(): unusable period frequency {freq!r} ({exc}); use a pandas period alias such as "
            "'D', 'W', 'M' or 'Q'."
        ) from exc


def _score_trend(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    dated = df[df["submitted_at"].notna()]
    if len(dated) == 0:
        return _empty(SCORE_TREND_COLUMNS)
    period = _periods(dated["submitted_at"], freq)
    full = pd.period_range(dated["submitted_at"].min(), dated["submitted_at"].max(), freq=freq).start_time
    work = pd.DataFrame(
        {
            "period": period.to_numpy(),
            "_v": dated["_v"].to_numpy(),
            "_ans": (~dated["is_non_answer"]).to_numpy(),
        }
    )
    g = work.groupby("period")
    out = pd.DataFrame({"n": g.size(), "n_answered": g["_ans"].sum(), "nps": g["_v"].mean()})
    out = out.reindex(full).rename_axis("period").reset_index()
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_answered"] = out["n_answered"].fillna(0).astype(int)
    return out[SCORE_TREND_COLUMNS]


def _trends(df: pd.DataFrame, long: pd.DataFrame, freq: str) -> pd.DataFrame:
    base = _score_trend(df, freq)
    if len(base) == 0 or len(long) == 0:
        return _empty(TREND_COLUMNS)
    dated = df[df["submitted_at"].notna()]
    key = pd.DataFrame(
        {"_rid": dated["_rid"].to_numpy(), "period": _periods(dated["submitted_at"], freq).to_numpy()}
    )
    lt = long[["_rid", "tag"]].merge(key, on="_rid", how="inner")
    if len(lt) == 0:
        return _empty(TREND_COLUMNS)
    counts = lt.groupby(["period", "tag"]).size()
    tags_sorted = sorted(lt["tag"].unique())
    grid = pd.MultiIndex.from_product([base["period"], tags_sorted], names=["period", "tag"])
    out = counts.reindex(grid, fill_value=0).rename("count").reset_index()
    out = out.merge(base, on="period", how="left")
    answered = out["n_answered"].where(out["n_answered"] > 0)
    out["share"] = out["count"] / answered
    out["count"] = out["count"].astype(int)
    return out[TREND_COLUMNS].reset_index(drop=True)


def score_trend(enriched: pd.DataFrame, freq: str = "W", survey_type: str | None = None) -> pd.DataFrame:
    """Responses and score per period.

    Args:
        enriched: Enriched responses with ``submitted_at``.
        freq: A pandas period alias ("D", "W", "M", "Q"); weeks run Monday to Sunday.
        survey_type: Analyse the rows of this type; None picks the dominant type.

    Returns:
        ``period`` (the period's start), ``n``, ``n_answered``, ``nps``; one row per period from the
        first to the last response, empty periods included (n = 0, nps NaN).
    """
    df = _prepare(enriched, "score_trend")
    df, _ = _subset_type(df, survey_type, "score_trend")
    return _score_trend(df, freq)


def trends(
    enriched: pd.DataFrame,
    freq: str = "W",
    tags: pd.DataFrame | None = None,
    survey_type: str | None = None,
) -> pd.DataFrame:
    """Theme volume per period, in long form, with the period's response count and score.

    Args:
        enriched: Enriched responses with ``submitted_at`` and tags.
        freq: A pandas period alias ("D", "W", "M", "Q"); weeks run Monday to Sunday.
        tags: Optional long-form tags table (see :func:`theme_impact`).
        survey_type: Analyse the rows of this type; None picks the dominant type.

    Returns:
        One row per (period, tag) over every period from the first to the last response and every tag
        seen (zeros filled in, so lines do not skip empty weeks): ``period`` (start), ``tag``, ``count``
        (responses with the tag), ``share`` (of the period's answered responses), ``n`` and ``nps`` (the
        period's). Sorted by period, then tag. Rows without ``submitted_at`` are left out.
    """
    df = _prepare(enriched, "trends")
    df, _ = _subset_type(df, survey_type, "trends")
    return _trends(df, _long_tags(df, tags), freq)


# --------------------------------------------------------------------------------------------------
# Close the loop
# --------------------------------------------------------------------------------------------------


def _close_the_loop(df: pd.DataFrame, n: int | None) -> tuple[pd.DataFrame, int]:
    cols = ["response_id"]
    if "customer_id" in df.columns:
        cols.append("customer_id")
    cols += ["survey_type", "score", "submitted_at", "tags", "sentiment_score", "text_redacted"]
    if len(df) == 0:
        return _empty(cols), 0
    mask = (
        df["_detractor"]
        & (df["sentiment_label"] == "negative")
        & (df["tags"].map(len) > 0)
        & ~df["is_non_answer"]
    )
    picked = df[mask].copy()
    if "text_redacted" not in picked.columns:
        picked["text_redacted"] = None
    # Recency by day first (a call-back is most useful soon after the answer), then within a day the
    # most negative sentiment and the lowest score.
    picked["_day"] = picked["submitted_at"].dt.normalize()
    picked = picked.sort_values(
        ["_day", "sentiment_score", "score", "submitted_at", "_rid"],
        ascending=[False, True, True, False, True],
        na_position="last",
    )
    total = len(picked)
    if n is not None:
        picked = picked.head(n)
    return picked[cols].reset_index(drop=True), total


def close_the_loop(enriched: pd.DataFrame, n: int = 50, tags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Detractors to call back: negative sentiment, at least one tag, most recent and most negative first.

    Detractors are judged on each row's own scale (NPS <= 6, CSAT <= 2, CES <= 3), so every survey type
    is included. Ordered by day of ``submitted_at`` (newest first), then ``sentiment_score`` (most
    negative first), then ``score`` (lowest first). Only the *redacted* text is returned.

    Args:
        enriched: Enriched responses.
        n: Most rows to return (None for all).
        tags: Optional long-form tags table (replaces ``enriched['tags']``).

    Returns:
        Columns ``response_id``, ``customer_id`` (when present), ``survey_type``, ``score``,
        ``submitted_at``, ``tags``, ``sentiment_score``, ``text_redacted``.
    """
    df = _prepare(enriched, "close_the_loop")
    if tags is not None:
        df = _with_tag_lists(df, _long_tags(df, tags))
    return _close_the_loop(df, n)[0]


# --------------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------------


def _top_topics(
    df_all: pd.DataFrame, df_typed: pd.DataFrame, topics: pd.DataFrame | None, limit: int
) -> pd.DataFrame:
    """Topic clusters with their volume, score and sentiment (outliers, topic -1, left out)."""
    has_col = "topic_id" in df_all.columns
    if not has_col and (topics is None or len(topics) == 0):
        return _empty(TOPIC_SUMMARY_COLUMNS)
    stat_cols = ["n", "share", "mean_sentiment", "negative_share", "nps", "_label"]
    stats = pd.DataFrame(columns=stat_cols, index=pd.Index([], dtype=float, name="topic_id"))
    answered = df_all[~df_all["is_non_answer"]]
    if has_col and len(answered):
        label = answered["topic_label"] if "topic_label" in answered.columns else None
        work = pd.DataFrame(
            {
                "topic_id": pd.to_numeric(answered["topic_id"], errors="coerce").astype(float),
                "_sent": answered["sentiment_score"],
                "_neg": answered["sentiment_label"] == "negative",
                "_known": answered["sentiment_label"].notna(),
                "_label": label.astype(object) if label is not None else None,
            }
        )
        work = work[work["topic_id"] >= 0]
        if len(work):
            g = work.groupby("topic_id")
            known = g["_known"].sum()
            typed = df_typed[df_typed["_v"].notna()]
            typed_tid = pd.to_numeric(typed["topic_id"], errors="coerce").astype(float)
            stats = pd.DataFrame(
                {
                    "n": g.size(),
                    "share": g.size() / len(answered),
                    "mean_sentiment": g["_sent"].mean(),
                    "negative_share": g["_neg"].sum() / known.where(known > 0),
                    "nps": typed["_v"].groupby(typed_tid).mean(),
                    "_label": g["_label"].first(),
                }
            )
            stats = stats[stats["n"].notna()]
            stats.index.name = "topic_id"
    stats = stats.reset_index()
    if topics is not None and len(topics):
        if "topic_id" not in topics.columns:
            raise missing_columns(
                "topics table", ["topic_id", "label", "keywords", "size"], list(topics.columns)
            )
        keep = [c for c in ("topic_id", "label", "keywords", "size") if c in topics.columns]
        meta = topics[keep].copy()
        meta["topic_id"] = pd.to_numeric(meta["topic_id"], errors="coerce").astype(float)
        meta = meta[meta["topic_id"] >= 0].drop_duplicates("topic_id", keep="last")
        out = meta.merge(stats, on="topic_id", how="left")
    else:
        out = stats
    for c in TOPIC_SUMMARY_COLUMNS:
        if c not in out.columns:
            out[c] = None if c in ("label", "keywords") else np.nan
    out["label"] = out["label"].astype(object).where(out["label"].notna(), out["_label"])
    out["n"] = out["n"].fillna(0).astype(int)
    out["keywords"] = (
        out["keywords"].map(lambda v: [v] if isinstance(v, str) else _as_tag_list(v)).astype(object)
    )
    out["topic_id"] = out["topic_id"].astype(int)
    out = out.sort_values(["n", "topic_id"], ascending=[False, True]).head(limit)
    return out[TOPIC_SUMMARY_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------------------------------


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class RootCauseSummary:
    """Everything the report and the terminal summary show, computed once by :func:`summarise`.

    Attributes:
        n_responses: All responses (every survey type).
        n_answered: Responses that are not non-answers.
        n_non_answer: Non-answers ("n/a", "nothing", empty).
        score_type: The survey type the score-based tables use (nps, csat or ces).
        overall: :func:`score_breakdown` of that type (score, n, shares in %).
        languages: Responses per detected language (answered responses), most frequent first.
        sentiment: Answered responses per sentiment label.
        tagged_share: Share (0..1) of answered responses with at least one tag.
        theme_impact: See :func:`theme_impact`.
        segments: See :func:`segment_breakdown`.
        trends: See :func:`trends`.
        close_the_loop: See :func:`close_the_loop`.
        top_topics: Topic clusters, largest first (topic_id, label, keywords, size, n, share, nps,
            mean_sentiment, negative_share).
        overall_by_type: :func:`score_breakdown` for every survey type present.
        score_trend: See :func:`score_trend`.
        tag_matrix: :func:`tag_segment_matrix` for ``heatmap_segment`` (most frequent tags).
        heatmap_segment: The segment shown in the heatmap: the one whose values' scores spread most.
        close_the_loop_total: Call-back candidates before the list was cut to its length.
        period_start: Earliest ``submitted_at``.
        period_end: Latest ``submitted_at``.
        freq: Period of the trends.
        notes: What a reader must know to read the numbers (e.g. tags from several codeframe versions).
    """

    n_responses: int
    n_answered: int
    n_non_answer: int
    score_type: str
    overall: dict[str, float]
    languages: dict[str, int]
    sentiment: dict[str, int]
    tagged_share: float
    theme_impact: pd.DataFrame
    segments: pd.DataFrame
    trends: pd.DataFrame
    close_the_loop: pd.DataFrame
    top_topics: pd.DataFrame
    overall_by_type: dict[str, dict[str, float]] = field(default_factory=dict)
    score_trend: pd.DataFrame = field(default_factory=lambda: _empty(SCORE_TREND_COLUMNS))
    tag_matrix: pd.DataFrame = field(default_factory=pd.DataFrame)
    heatmap_segment: str | None = None
    close_the_loop_total: int = 0
    period_start: pd.Timestamp | None = None
    period_end: pd.Timestamp | None = None
    freq: str = "W"
    notes: list[str] = field(default_factory=list)

    @property
    def score_name(self) -> str:
        """Display name of the score: NPS, CSAT or CES."""
        return SCORE_NAMES.get(self.score_type, self.score_type.upper())

    def to_dict(self, include_close_the_loop: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (NaN -> None, timestamps -> ISO strings).

        Args:
            include_close_the_loop: Also include the call-back rows (customer ids and redacted text);
                left out by default so that the machine-readable summary holds no customer-level data.
        """
        out: dict[str, Any] = {
            "n_responses": self.n_responses,
            "n_answered": self.n_answered,
            "n_non_answer": self.n_non_answer,
            "score_type": self.score_type,
            "overall": self.overall,
            "overall_by_type": self.overall_by_type,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "languages": self.languages,
            "sentiment": self.sentiment,
            "tagged_share": self.tagged_share,
            "theme_impact": records(self.theme_impact),
            "segments": records(self.segments),
            "score_trend": records(self.score_trend),
            "top_topics": records(self.top_topics),
            "close_the_loop_count": self.close_the_loop_total,
        }
        if include_close_the_loop:
            out["close_the_loop"] = records(self.close_the_loop)
        return jsonable(out)


def jsonable(value: Any) -> Any:
    """Convert ``value`` recursively into plain JSON types (NaN/NaT -> None, timestamps -> ISO)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return None if pd.isna(ts) else ts.isoformat()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``df`` as JSON-ready dicts."""
    return [jsonable(r) for r in df.to_dict(orient="records")]


def _counts(s: pd.Series) -> dict[str, int]:
    vc = s.dropna().astype(str).value_counts()
    vc = vc.sort_index().sort_values(ascending=False, kind="stable")
    return {str(k): int(v) for k, v in vc.items()}


def _pick_heatmap_segment(segments_df: pd.DataFrame, max_values: int = 15) -> str | None:
    if len(segments_df) == 0:
        return None
    best, spread = None, -1.0
    for seg, part in segments_df.groupby("segment", sort=False):
        if not 2 <= len(part) <= max_values:
            continue
        s = part["nps"].astype(float)
        value = float(s.max() - s.min()) if s.notna().sum() >= 2 else 0.0
        if value > spread:
            best, spread = str(seg), value
    return best


def summarise(
    enriched: pd.DataFrame,
    tags: pd.DataFrame | None = None,
    topics: pd.DataFrame | None = None,
    segments: Sequence[str] | None = None,
    *,
    survey_type: str | None = None,
    min_count: int = 5,
    segment_min_count: int = 10,
    freq: str = "W",
    n_close: int = 50,
    top_topics: int = 15,
    heatmap_tags: int = 12,
    segment_tag_min_count: int = 3,
) -> RootCauseSummary:
    """Compute every root-cause table at once.

    Args:
        enriched: Enriched responses (``feedback_enriched`` plus segment columns).
        tags: Optional long-form tags table; when given it is the truth for which response has which tag.
        topics: Optional topics table (topic_id, label, keywords, size).
        segments: Segment columns; None detects them (:func:`detect_segments`), [] turns them off.
        survey_type: The type the score-based tables use; None picks the dominant one.
        min_count: Least responses for a theme to be listed.
        segment_min_count: Least responses for a segment value to be listed.
        freq: Period of the trends.
        n_close: Length of the close-the-loop list.
        top_topics: Number of topics kept.
        heatmap_tags: Number of tags (most frequent) in the segment x tag matrix.
        segment_tag_min_count: Least responses for a tag to be a segment value's top negative tag.

    Returns:
        A :class:`RootCauseSummary`. An empty frame gives a summary of zeros, NaN and empty tables.
    """
    df = _prepare(enriched, "summarise")
    long = _long_tags(df, tags)
    if tags is not None:
        df = _with_tag_lists(df, long)
    typed, st = _subset_type(df, survey_type, "summarise")
    typed_long = long[long["_rid"].isin(typed["_rid"].to_numpy())]
    answered = df[~df["is_non_answer"]]
    if segments is None:
        segments = detect_segments(enriched)
        log.info("summarise(): segment columns detected: %s", segments)
    elif isinstance(segments, str):
        segments = [segments]
    seg_df = _segment_breakdown(typed, typed_long, list(segments), segment_min_count, segment_tag_min_count)
    heat = _pick_heatmap_segment(seg_df)
    matrix = pd.DataFrame()
    if heat:
        # The values of the segments table (which counts every response of the type), so the heatmap
        # and the table show the same rows.
        shown = seg_df.loc[seg_df["segment"] == heat, "value"].tolist()
        matrix = _tag_segment_matrix(df, long, heat, 1, heatmap_tags)
        matrix = matrix[matrix.index.isin(shown)]
    ctl, ctl_total = _close_the_loop(df, n_close)
    dates = df["submitted_at"].dropna()
    return RootCauseSummary(
        n_responses=len(df),
        n_answered=len(answered),
        n_non_answer=int(df["is_non_answer"].sum()),
        score_type=st,
        overall=score_breakdown(typed["score"], st),
        languages=_counts(answered["language"]) if "language" in answered.columns else {},
        sentiment=_counts(answered["sentiment_label"]),
        tagged_share=float((answered["tags"].map(len) > 0).mean()) if len(answered) else float("nan"),
        theme_impact=_theme_impact(typed, typed_long, min_count),
        segments=seg_df,
        trends=_trends(typed, typed_long, freq),
        close_the_loop=ctl,
        top_topics=_top_topics(df, typed, topics, top_topics),
        overall_by_type={
            t: score_breakdown(df.loc[df["survey_type"] == t, "score"], t)
            for t in _TYPE_ORDER
            if (df["survey_type"] == t).any()
        },
        score_trend=_score_trend(typed, freq),
        tag_matrix=matrix,
        heatmap_segment=heat,
        close_the_loop_total=ctl_total,
        period_start=dates.min() if len(dates) else None,
        period_end=dates.max() if len(dates) else None,
        freq=freq,
        notes=_codeframe_notes(answered),
    )


def _codeframe_notes(answered: pd.DataFrame) -> list[str]:
    """A note when the answers' tags come from more than one codeframe (taxonomy) version: a tag whose
    definition changed then counts answers tagged under each definition."""
    if "taxonomy_version" not in answered.columns:
        return []
    versions = answered["taxonomy_version"].dropna().astype(str).value_counts()
    if len(versions) < 2:
        return []
    listed = ", ".join(f"{v} ({n:,} answers)" for v, n in versions.items())
    return [
        f"tags come from {len(versions)} codeframe versions: {listed}. A tag whose definition changed "
        "counts answers tagged under each; the weekly retrain-tagger flow re-tags the stored answers."
    ]


# --------------------------------------------------------------------------------------------------
# Terminal summary
# --------------------------------------------------------------------------------------------------


def _fmt_num(value: Any, digits: int = 1, signed: bool = False) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _fmt_pct(value: Any, digits: int = 1) -> str:
    """A 0..1 share as a percentage."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def _cut(text: Any, width: int) -> str:
    s = "-" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    s = " ".join(s.split())
    return s if len(s) <= width else s[: width - 3] + "..."


def _table(headers: list[tuple[str, int, str]], rows: list[list[str]]) -> list[str]:
    """Fixed-width lines; each header is (title, width, '<' or '>')."""
    fmt = "  ".join(f"{{:{align}{width}}}" for _, width, align in headers)
    lines = [fmt.format(*[_cut(h, w) for h, w, _ in headers]).rstrip()]
    lines.append("  ".join("-" * w for _, w, _ in headers))
    for row in rows:
        lines.append(fmt.format(*[_cut(v, w) for v, (_, w, _) in zip(row, headers, strict=True)]).rstrip())
    return lines


def format_summary(summary: RootCauseSummary, top: int = 10, worst_segments: int = 5) -> str:
    """A compact fixed-width text summary for the terminal (returned, not printed).

    Args:
        summary: From :func:`summarise`.
        top: Themes shown (by impact, worst first).
        worst_segments: Segment values shown (largest drop against the overall score first).

    Returns:
        Multi-line text.
    """
    name = summary.score_name
    lines: list[str] = [f"Note: {note}" for note in summary.notes]
    period = ""
    if summary.period_start is not None and summary.period_end is not None:
        period = f", {summary.period_start:%Y-%m-%d} .. {summary.period_end:%Y-%m-%d}"
    lines.append(
        f"Responses: {summary.n_responses:,} ({summary.n_answered:,} answered, "
        f"{summary.n_non_answer:,} non-answer{'' if summary.n_non_answer == 1 else 's'}){period}"
    )
    if summary.n_responses == 0:
        lines.append("No responses to analyse.")
        return "\n".join(lines)
    o = summary.overall
    parts = [f"n={int(o.get('n', 0)):,}"]
    for key, label in (
        ("promoter_share", "promoters"),
        ("passive_share", "passives"),
        ("satisfied_share", "satisfied"),
        ("detractor_share", "detractors"),
    ):
        if key in o:
            parts.append(f"{label} {_fmt_num(o[key])}%")
    score = _fmt_num(o.get("score"), signed=summary.score_type == "nps")
    lines.append(f"{name}: {score}  ({', '.join(parts)})")
    others = [
        f"{SCORE_NAMES[t]} {_fmt_num(b.get('score'))} (n={int(b.get('n', 0)):,})"
        for t, b in summary.overall_by_type.items()
        if t != summary.score_type
    ]
    if others:
        lines.append("Other survey types (analysed separately): " + ", ".join(others))
    if summary.languages:
        total = sum(summary.languages.values()) or 1
        langs = [f"{k} {v:,} ({100 * v / total:.0f}%)" for k, v in list(summary.languages.items())[:8]]
        more = len(summary.languages) - 8
        lines.append("Languages: " + ", ".join(langs) + (f", +{more} more" if more > 0 else ""))
    if summary.sentiment:
        lines.append("Sentiment: " + ", ".join(f"{k} {v:,}" for k, v in summary.sentiment.items()))
    lines.append(f"Tagged: {_fmt_pct(summary.tagged_share)} of answered responses carry at least one theme")
    lines.append("")
    ti = summary.theme_impact
    if len(ti):
        lines.append(f"Top themes by {name} impact (worst first)")
        rows = [
            [
                r.tag,
                f"{int(r.volume):,}",
                _fmt_pct(r.share),
                _fmt_num(r.nps_with, signed=summary.score_type == "nps"),
                _fmt_num(r.nps_impact, signed=True),
                _fmt_pct(r.detractor_share, 0),
                _fmt_num(r.mean_sentiment, 2, signed=True),
            ]
            for r in ti.head(top).itertuples(index=False)
        ]
        lines += _table(
            [
                ("theme", 32, "<"),
                ("volume", 7, ">"),
                ("share", 6, ">"),
                (f"{name} with", 9, ">"),
                ("impact", 7, ">"),
                ("detr.", 5, ">"),
                ("sent.", 6, ">"),
            ],
            rows,
        )
    else:
        lines.append("No themes to rank (no tags, or none on enough responses).")
    seg = summary.segments
    if len(seg):
        worst = seg.sort_values(["nps_delta", "n"], ascending=[True, False], na_position="last").head(
            worst_segments
        )
        lines.append("")
        lines.append(f"Worst segment values (vs. overall {name})")
        rows = [
            [
                r.segment,
                r.value,
                f"{int(r.n):,}",
                _fmt_num(r.nps, signed=summary.score_type == "nps"),
                _fmt_num(r.nps_delta, signed=True),
                r.top_negative_tag,
            ]
            for r in worst.itertuples(index=False)
        ]
        lines += _table(
            [
                ("segment", 14, "<"),
                ("value", 18, "<"),
                ("n", 7, ">"),
                (name, 6, ">"),
                ("delta", 6, ">"),
                ("top negative theme", 28, "<"),
            ],
            rows,
        )
    lines.append("")
    shown = len(summary.close_the_loop)
    lines.append(
        f"Close the loop: {summary.close_the_loop_total:,} detractor(s) with negative sentiment and a theme"
        + (f" (listing {shown:,})" if shown < summary.close_the_loop_total else "")
    )
    return "\n".join(lines)
