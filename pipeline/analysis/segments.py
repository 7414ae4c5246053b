"""Segments: the score per segment value, and segment x theme cells that differ significantly.

A cell (segment value, theme) compares the theme's share among the value's answered responses with its
share among the other values' (a pooled two-proportion z test); the p-values of all cells of the table
are corrected together with Benjamini-Hochberg (``config.analysis.fdr``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Filters, Params, Scope
from pipeline.analysis.scores import dominant_survey_type
from pipeline.analysis.stats import NAN, bh_adjust, score_interval, two_proportion_test
from pipeline.config import EnrichmentConfig
from pipeline.errors import ConfigError
from pipeline.warehouse.base import Warehouse

CROSSTAB_COLUMNS = [
    "segment",
    "value",
    "tag",
    "n",
    "count",
    "share",
    "share_rest",
    "lift",
    "p_value",
    "p_adjusted",
    "significant",
    "small_sample",
]
SEGMENT_SCORE_COLUMNS = ["segment", "value", "n", "score", "low", "high", "delta", "small_sample"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def segment_columns(wh: Warehouse, *, config: EnrichmentConfig | None = None) -> list[str]:
    """The segment columns usable in :class:`Filters` and cross-tabs (declared in ``source.segments``)."""
    return Scope.of(wh, config).segment_columns()


def _check(scope: Scope, segment: str) -> None:
    if segment not in scope.segment_columns():
        raise ConfigError(
            f"{segment!r} is not a segment column of {scope.config.tables.enriched} (usable: "
            f"{scope.segment_columns()}); name it in source.segments to make it a column."
        )


def segment_theme_crosstab(
    wh: Warehouse,
    segment: str,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    max_themes: int | None = 30,
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """Share of answered responses with each theme per value of a segment, with BH-corrected tests.

    Args:
        wh: The warehouse.
        segment: A segment column (:func:`segment_columns`).
        filters: The slice (every survey type: a share involves no score).
        level: ``theme`` or ``parent``.
        max_themes: Keep the most frequent themes (None: all).
        config: Table names and ``analysis`` settings.

    Returns:
        :data:`CROSSTAB_COLUMNS`, one row per (value, theme): ``n`` (answered responses of the value),
        ``count``, ``share``, ``share_rest`` (the other values), ``lift`` (share / share_rest),
        ``p_value``, ``p_adjusted`` (Benjamini-Hochberg over the table), ``significant``,
        ``small_sample`` (n below ``config.analysis.small_sample``).
    """
    config = config or EnrichmentConfig()
    scope = Scope.of(wh, config)
    if scope.empty:
        return _empty(CROSSTAB_COLUMNS)
    _check(scope, segment)
    p = Params()
    seg = f"CAST(b.{scope.col(segment)} AS TEXT)"
    head = scope.ctes(filters or Filters(), p, extra=[segment], tags=False)
    rows = scope.run(
        f"{head}, tt AS ({scope.theme_rows(p, level)}) "
        f"SELECT {seg} AS value, tt.tag, COUNT(*) AS n FROM tt JOIN base b ON b.{ROW_KEY} = tt.{ROW_KEY} "
        f"WHERE NOT b.is_non_answer AND b.{scope.col(segment)} IS NOT NULL GROUP BY 1, 2 UNION ALL "
        f"SELECT {seg}, CAST(NULL AS TEXT), COUNT(*) FROM base b WHERE NOT b.is_non_answer "
        f"AND b.{scope.col(segment)} IS NOT NULL GROUP BY 1",
        p,
    )
    sizes = rows[rows["tag"].isna()].set_index("value")["n"].astype(int)
    counts = rows[rows["tag"].notna()]
    if counts.empty or sizes.empty:
        return _empty(CROSSTAB_COLUMNS)
    order = counts.groupby("tag")["n"].sum().sort_index().sort_values(ascending=False, kind="stable")
    tags = list(order.index[:max_themes] if max_themes else order.index)
    grid = pd.MultiIndex.from_product([sorted(sizes.index), tags], names=["value", "tag"])
    out = counts.set_index(["value", "tag"])["n"].reindex(grid, fill_value=0).rename("count").reset_index()
    out["n"] = out["value"].map(sizes).astype(int)
    total_n = int(sizes.sum())
    per_tag = out.groupby("tag")["count"].transform("sum")
    count_rest, n_rest = per_tag - out["count"], total_n - out["n"]
    out["share"] = out["count"] / out["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share_rest"] = np.where(n_rest > 0, count_rest / n_rest.where(n_rest > 0), NAN)
        out["lift"] = out["share"] / out["share_rest"].where(out["share_rest"] > 0)
    out["p_value"] = two_proportion_test(out["count"], out["n"], count_rest, n_rest)
    rejected, adjusted = bh_adjust(out["p_value"].to_numpy(), config.analysis.fdr)
    out["p_adjusted"], out["significant"] = adjusted, rejected
    out["segment"] = segment
    out["small_sample"] = out["n"] < config.analysis.small_sample
    out["count"] = out["count"].astype(int)
    return out[CROSSTAB_COLUMNS].reset_index(drop=True)


def segment_scores(
    wh: Warehouse, segment: str, filters: Filters | None = None, *, config: EnrichmentConfig | None = None
) -> pd.DataFrame:
    """The score per value of a segment with its interval, and its difference to the slice's score.

    Returns:
        :data:`SEGMENT_SCORE_COLUMNS`, worst value first.
    """
    config = config or EnrichmentConfig()
    filters = (filters or Filters()).with_type(dominant_survey_type(wh, filters, config=config))
    scope = Scope.of(wh, config)
    if scope.empty:
        return _empty(SEGMENT_SCORE_COLUMNS)
    _check(scope, segment)
    p = Params()
    rows = scope.run(
        f"{scope.ctes(filters, p, extra=[segment], tags=False)} SELECT CAST({scope.col(segment)} AS TEXT) AS value, "
        "COUNT(v) AS n, SUM(v) AS s, SUM(v * v) AS ss, SUM(CASE WHEN pro THEN 1 ELSE 0 END) AS pro FROM base "
        f"WHERE {scope.col(segment)} IS NOT NULL GROUP BY 1",
        p,
    )
    if rows.empty:
        return _empty(SEGMENT_SCORE_COLUMNS)
    st, a = filters.survey_type or "nps", config.analysis
    n_all = int(rows["n"].sum())
    overall = score_interval(
        st,
        n_all,
        float(rows["s"].fillna(0).sum()),
        float(rows["ss"].fillna(0).sum()),
        int(rows["pro"].sum()),
        a.confidence,
    )
    out = []
    for r in rows.itertuples(index=False):
        e = score_interval(st, int(r.n), float(r.s or 0), float(r.ss or 0), int(r.pro or 0), a.confidence)
        out.append(
            [
                segment,
                r.value,
                int(r.n),
                e.value,
                e.low,
                e.high,
                e.value - overall.value,
                int(r.n) < a.small_sample,
            ]
        )
    frame = pd.DataFrame(out, columns=SEGMENT_SCORE_COLUMNS)
    return frame.sort_values(["score", "value"], na_position="last").reset_index(drop=True)
