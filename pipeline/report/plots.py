"""The report's plots: each returns a base64 PNG, or None when there is nothing to draw.

Drawn with matplotlib's Agg canvas on standalone ``Figure`` objects: no ``pyplot``, no global backend
switch, nothing shown on screen, safe in a notebook or a worker thread.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

MAX_BARS = 15
TREND_TAGS = 5
NEGATIVE_COLOUR = "#c0392b"
POSITIVE_COLOUR = "#27ae60"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only needed here

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches the Agg canvas; no global backend is touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text: Any, width: int = 40) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def plot_theme_impact(theme_impact: pd.DataFrame, score_name: str = "NPS") -> str | None:
    """Horizontal bars of each theme's score impact (the largest effects, worst at the top).

    Args:
        theme_impact: From :func:`pipeline.analysis.theme_impact`.
        score_name: Axis label of the score.

    Returns:
        A base64 PNG, or None when there are no themes with a known impact.
    """
    ti = theme_impact[theme_impact["impact"].notna()] if len(theme_impact) else theme_impact
    if len(ti) == 0:
        return None
    ti = ti.assign(_abs=ti["impact"].abs()).sort_values("_abs", ascending=False).head(MAX_BARS)
    ti = ti.sort_values("impact", ascending=False)  # barh draws bottom-up: worst ends on top
    fig = _figure(8, 0.38 * len(ti) + 1.2)
    ax = fig.add_subplot()
    impact = ti["impact"].astype(float)
    colours = [NEGATIVE_COLOUR if v < 0 else POSITIVE_COLOUR for v in impact]
    low = (impact - ti["impact_low"].astype(float)).clip(lower=0).fillna(0)
    high = (ti["impact_high"].astype(float) - impact).clip(lower=0).fillna(0)
    ax.barh([_label(t) for t in ti["tag"]], impact, color=colours, xerr=[low, high], ecolor="#555", capsize=2)
    ax.axvline(0, color="#555", linewidth=0.8)
    for y, (v, n) in enumerate(zip(impact, ti["volume"], strict=True)):
        ax.annotate(
            f"{v:+.{1 if abs(v) >= 1 else 2}f} (n={int(n):,})",
            (v, y),
            xytext=(4 if v >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if v >= 0 else "right",
            va="center",
            fontsize=8,
        )
    lo = float(min((impact - low).min(), 0))
    hi = float(max((impact + high).max(), 0))
    pad = 0.25 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(f"{score_name} impact (points; negative drags the score down)")
    ax.set_title(f"Theme impact on {score_name}")
    ax.tick_params(axis="y", labelsize=9)
    return _png(fig)


def plot_theme_trends(trends: pd.DataFrame, top: int = TREND_TAGS) -> str | None:
    """Lines of weekly (per period) volume for the ``top`` most frequent themes.

    Args:
        trends: Long form from :func:`pipeline.analysis.theme_trend`.
        top: Number of themes drawn.

    Returns:
        A base64 PNG, or None when there is no tagged response with a date.
    """
    if len(trends) == 0 or int(trends["count"].sum()) == 0:
        return None
    totals = trends.groupby("tag")["count"].sum()
    totals = totals.sort_index().sort_values(ascending=False, kind="stable")
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    for tag in totals.index[:top]:
        part = trends[trends["tag"] == tag].sort_values("period")
        ax.plot(part["period"], part["count"], marker="o", markersize=3, label=_label(tag, 30))
    ax.set_ylabel("responses")
    ax.set_title(f"Volume of the top {min(top, len(totals))} themes per period")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def plot_score_trend(score_trend: pd.DataFrame, score_name: str = "NPS") -> str | None:
    """The score per period (a line) over the number of responses (bars).

    Returns:
        A base64 PNG, or None with fewer than two periods.
    """
    st = score_trend[score_trend["n"] > 0] if len(score_trend) else score_trend
    if len(st) < 2:
        return None
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    gaps = st["period"].diff().dt.total_seconds().dropna() / 86400
    width = 0.7 * float(gaps.median()) if len(gaps) else 1.0  # bars as wide as the periods (days)
    ax2.bar(st["period"], st["n"], width=width, color="#bbb", alpha=0.5)
    ax2.set_ylabel("responses")
    ax.fill_between(
        st["period"], st["low"].astype(float), st["high"].astype(float), color="#2c3e50", alpha=0.15
    )
    ax.plot(st["period"], st["score"].astype(float), color="#2c3e50", marker="o", markersize=3)
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_ylabel(score_name)
    ax.set_title(f"{score_name} per period")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def plot_heatmap(matrix: pd.DataFrame, segment: str) -> str | None:
    """Segment value x theme heatmap of the share of answered responses with the theme.

    Returns:
        A base64 PNG, or None for an empty matrix.
    """
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        return None
    values = matrix.to_numpy(dtype=float) * 100
    fig = _figure(max(6.0, 0.7 * matrix.shape[1] + 2.5), 0.45 * matrix.shape[0] + 2.2)
    ax = fig.add_subplot()
    image = ax.imshow(values, aspect="auto", cmap="Reds", vmin=0)
    ax.set_xticks(
        range(matrix.shape[1]), [_label(c, 24) for c in matrix.columns], rotation=40, ha="right", fontsize=8
    )
    ax.set_yticks(range(matrix.shape[0]), [_label(i, 24) for i in matrix.index], fontsize=9)
    top = values.max() if values.size else 0
    digits = 0 if top >= 10 else 1
    for (i, j), v in pd.DataFrame(values).stack().items():
        ax.text(
            j,
            i,
            f"{v:.{digits}f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > 0.6 * top else "black",
        )
    ax.set_title(f"Share of answered responses with each theme (%), by {segment}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="%")
    return _png(fig)


def _safe_plot(name: str, func: Callable[..., str | None], *args: Any) -> str | None:
    # A plot is a nice-to-have: one that fails must not cost the whole nightly report.
    try:
        return func(*args)
    except Exception:
        log.warning("report: the %s plot failed; the report goes on without it", name, exc_info=True)
        return None
