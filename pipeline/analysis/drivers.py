"""Drivers: which themes explain detractors, with intervals.

A logistic regression ``detractor ~ theme_1 + ... + theme_k`` over the scored responses of one survey
type, for the ``config.analysis.driver_themes`` most frequent themes (or parent themes). The warehouse
returns one row per distinct (theme set, detractor) pattern with its count; statsmodels fits the model
on those patterns with frequency weights, which gives the same estimates as a fit on every response
(tests/test_analysis_stats.py) at a cost that does not grow with the rows. Odds ratios above 1 make a
detractor more likely; ``significant`` is after Benjamini-Hochberg over the themes.

One query does it all (one join of the theme rows to the responses): it counts the scored responses per
theme, gives every theme that can be among the ``driver_themes`` most frequent (ties at the cut
included) a bit, and returns the per-response theme sets as bit masks grouped with their counts;
responses without any of those themes are the rest of the scored ones. Python then picks the top themes
exactly (ties by name) and folds the masks onto them. When more than :data:`MAX_BITS` themes tie into
the cut, a second query names the chosen themes (string patterns, as before).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Filters, Params, Scope
from pipeline.analysis.scores import dominant_survey_type
from pipeline.analysis.stats import DRIVER_COLUMNS, logistic_drivers
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse

MAX_BITS = 62
"""Themes one BIGINT mask holds (bits 0..61: sums stay exact in every backend)."""
SEP = "\x1f"  # joins the themes of a pattern in the fallback; not a character a theme name holds


def _empty() -> tuple[pd.DataFrame, list[str]]:
    return pd.DataFrame(columns=["det", "weight"]), []


def _scored_rows(scope: Scope, filters: Filters, p: Params, level: str) -> str:
    """``WITH base, tt, tb``: ``tb`` is one row per (scored response, theme) with the response's ``det``."""
    return (
        f"{scope.ctes(filters, p, tags=False)}, tt AS ({scope.theme_rows(p, level)}), "
        f"tb AS (SELECT tt.{ROW_KEY}, tt.tag, CASE WHEN b.det THEN 1 ELSE 0 END AS det FROM tt "
        f"JOIN base b ON b.{ROW_KEY} = tt.{ROW_KEY} WHERE b.v IS NOT NULL)"
    )


_REST = (
    "SELECT 'all', CAST(NULL AS TEXT), COUNT(*), CAST(NULL AS BIGINT), CASE WHEN det THEN 1 ELSE 0 END "
    "FROM base WHERE v IS NOT NULL GROUP BY CASE WHEN det THEN 1 ELSE 0 END"
)


def _fold(rows: pd.DataFrame, bits: dict[str, int], themes: list[str]) -> pd.DataFrame:
    """Patterns (``mask``, ``det``, ``n``) and per-``det`` totals (kind ``all``) -> the weighted frame."""
    pats = rows[rows["kind"] == "pat"]
    masks = pd.to_numeric(pats["mask"]).astype(np.int64).to_numpy()
    frame = pd.DataFrame({t: ((masks >> bits[t]) & 1).astype(int) for t in themes}, index=pats.index)
    frame["det"] = pd.to_numeric(pats["det"]).astype(int)
    frame["weight"] = pd.to_numeric(pats["n"]).astype(np.int64)
    totals = rows[rows["kind"] == "all"]
    rest = []
    for r in totals.itertuples(index=False):
        d = int(r.det)
        left = int(r.n) - int(frame.loc[frame["det"] == d, "weight"].sum())
        if left > 0:
            rest.append({**dict.fromkeys(themes, 0), "det": d, "weight": left})
    if rest:
        frame = pd.concat([frame, pd.DataFrame(rest)], ignore_index=True)
    frame = frame.groupby([*themes, "det"], as_index=False, sort=True)["weight"].sum()
    frame = frame[frame["weight"] > 0]
    return frame[[*themes, "det", "weight"]].reset_index(drop=True)


def driver_patterns(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    config: EnrichmentConfig | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The weighted patterns the driver model is fitted on: (frame, themes).

    The frame has a 0/1 column per theme, ``det`` and ``weight`` (one row per distinct pattern).
    """
    config = config or EnrichmentConfig()
    filters = (filters or Filters()).with_type(dominant_survey_type(wh, filters, config=config))
    scope = Scope.of(wh, config)
    if scope.empty:
        return _empty()
    k = config.analysis.driver_themes
    p = Params()
    cut = p.add(k)
    rows = scope.run(
        f"{_scored_rows(scope, filters, p, level)}, top AS (SELECT tag, COUNT(*) AS n FROM tb GROUP BY tag), "
        "ranked AS (SELECT tag, n, RANK() OVER (ORDER BY n DESC) AS rk, "
        "ROW_NUMBER() OVER (ORDER BY n DESC, tag) AS rn FROM top), "
        f"bits AS (SELECT tag, rn - 1 AS bit FROM ranked WHERE rk <= {cut} AND rn <= {MAX_BITS}), "
        f"pat AS (SELECT tb.{ROW_KEY}, MAX(tb.det) AS det, "
        "SUM(CAST(POWER(2, bits.bit) AS BIGINT)) AS mask FROM tb JOIN bits ON bits.tag = tb.tag "
        f"GROUP BY tb.{ROW_KEY}) "
        "SELECT 'top' AS kind, r.tag, r.n, CAST(x.bit AS BIGINT) AS mask, "
        f"CASE WHEN r.rk <= {cut} THEN 1 ELSE 0 END AS det "
        "FROM ranked r LEFT JOIN bits x ON x.tag = r.tag UNION ALL "
        "SELECT 'pat', CAST(NULL AS TEXT), COUNT(*), CAST(mask AS BIGINT), det FROM pat GROUP BY mask, det "
        f"UNION ALL {_REST}",
        p,
    )
    top = rows[rows["kind"] == "top"]
    if top.empty:
        return _empty()
    top = top.assign(n=pd.to_numeric(top["n"]).astype(np.int64))
    chosen = top.sort_values(["n", "tag"], ascending=[False, True]).head(k)
    themes = sorted(chosen["tag"].astype(str))
    if chosen["mask"].notna().all():
        bits = {str(t): int(b) for t, b in zip(chosen["tag"], chosen["mask"], strict=True)}
        return _fold(rows, bits, themes), themes
    # More than MAX_BITS themes tie into the cut: name the chosen ones (at most 200, config bound).
    return _by_names(scope, filters, level, themes), themes


def _by_names(scope: Scope, filters: Filters, level: str, themes: list[str]) -> pd.DataFrame:
    """The patterns over explicitly named themes (any number), as sorted theme lists joined by :data:`SEP`."""
    p = Params()
    rows = scope.run(
        f"{scope.ctes(filters, p, tags=False)}, tt AS ({scope.theme_rows(p, level)}), "
        f"pat AS (SELECT b.{ROW_KEY}, CASE WHEN b.det THEN 1 ELSE 0 END AS det, "
        f"STRING_AGG(tt.tag, '{SEP}' ORDER BY tt.tag) AS pattern FROM base b LEFT JOIN tt ON "
        f"tt.{ROW_KEY} = b.{ROW_KEY} AND tt.tag IN {p.many(themes)} WHERE b.v IS NOT NULL "
        f"GROUP BY b.{ROW_KEY}, b.det) SELECT pattern, det, COUNT(*) AS weight FROM pat GROUP BY pattern, det",
        p,
    )
    sets = [set(str(x).split(SEP)) if x is not None and not pd.isna(x) else set() for x in rows["pattern"]]
    frame = pd.DataFrame({t: [int(t in s) for s in sets] for t in themes})
    frame["det"] = rows["det"].astype(int).to_numpy()
    frame["weight"] = rows["weight"].astype(np.int64).to_numpy()
    return frame


def drivers(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """Themes that explain detractors: odds ratios with intervals (see the module docstring).

    Returns:
        :data:`pipeline.analysis.stats.DRIVER_COLUMNS`: ``theme``, ``n`` (scored responses with it),
        ``coef`` (log odds), ``odds_ratio``, ``low``, ``high``, ``p_value``, ``p_adjusted``,
        ``significant``; strongest driver first; empty when the model cannot be fitted.
    """
    config = config or EnrichmentConfig()
    frame, themes = driver_patterns(wh, filters, level=level, config=config)
    if not themes:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DRIVER_COLUMNS})
    return logistic_drivers(frame, themes, config.analysis.confidence, config.analysis.fdr)
