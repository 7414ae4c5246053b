"""The terminal summary of the report: fixed-width text (returned, never printed here)."""

from __future__ import annotations

import math
from typing import Any

from pipeline.report.summary import ReportData


def fmt_num(value: Any, digits: int = 1, signed: bool = False) -> str:
    """A number as text ('-' for missing)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A 0..1 share as a percentage."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def fmt_interval(low: Any, high: Any, digits: int = 1) -> str:
    """``[low, high]`` ('-' when unknown)."""
    lo, hi = fmt_num(low, digits), fmt_num(high, digits)
    return "-" if "-" in (lo, hi) and (lo == "-" or hi == "-") else f"[{lo}, {hi}]"


def _cut(text: Any, width: int) -> str:
    s = "-" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    s = " ".join(s.split())
    return s if len(s) <= width else s[: width - 3] + "..."


def _table(headers: list[tuple[str, int, str]], rows: list[list[str]]) -> list[str]:
    fmt = "  ".join(f"{{:{align}{width}}}" for _, width, align in headers)
    lines = [fmt.format(*[_cut(h, w) for h, w, _ in headers]).rstrip()]
    lines.append("  ".join("-" * w for _, w, _ in headers))
    for row in rows:
        lines.append(fmt.format(*[_cut(v, w) for v, (_, w, _) in zip(row, headers, strict=True)]).rstrip())
    return lines


def format_summary(data: ReportData, top: int = 10, worst_segments: int = 5) -> str:
    """A compact text summary: score with interval and change, themes with intervals and flags.

    Args:
        data: From :func:`pipeline.report.summary.build_summary`.
        top: Themes shown (worst impact first).
        worst_segments: Segment values shown (lowest score first).
    """
    o, s, name = data.overview, data.score, data.score_name
    signed = data.score_type == "nps"
    lines: list[str] = [f"Note: {note}" for note in data.notes]
    period = ""
    if o.period_start is not None and o.period_end is not None:
        period = f", {o.period_start:%Y-%m-%d} .. {o.period_end:%Y-%m-%d}"
    lines.append(
        f"Responses: {o.n_responses:,} ({o.n_answered:,} answered, {o.n_non_answer:,} "
        f"non-answer{'' if o.n_non_answer == 1 else 's'}){period}"
    )
    if o.n_responses == 0:
        lines.append("No responses to analyse.")
        return "\n".join(lines)
    flag = " (small sample)" if s.small_sample else ""
    lines.append(
        f"{name}: {fmt_num(s.score, signed=signed)} {fmt_interval(s.low, s.high)}  (n={s.n:,}, "
        f"promoters {fmt_num(s.promoter_share)}%, detractors {fmt_num(s.detractor_share)}%){flag}"
    )
    r = data.recent
    if r is not None and r.change is not None:
        p = r.change.p_value
        verdict = "significant" if p == p and p < 0.05 else "not significant"
        lines.append(
            f"Last 28 days: {fmt_num(r.score, signed=signed)} (n={r.n:,}), change vs the 28 days before "
            f"{fmt_num(r.change.delta, signed=True)} {fmt_interval(r.change.low, r.change.high)}, "
            f"p={fmt_num(p, 3)} ({verdict})"
        )
    others = [
        f"{t.upper()} {fmt_num(b.score)} (n={b.n:,})" for t, b in data.by_type.items() if t != data.score_type
    ]
    if others:
        lines.append("Other survey types (analysed separately): " + ", ".join(others))
    if o.languages:
        total = sum(o.languages.values()) or 1
        langs = [f"{k} {v:,} ({100 * v / total:.0f}%)" for k, v in list(o.languages.items())[:8]]
        lines.append("Languages: " + ", ".join(langs))
    if o.sentiment:
        lines.append("Sentiment: " + ", ".join(f"{k} {v:,}" for k, v in o.sentiment.items()))
    lines.append(f"Tagged: {fmt_pct(o.tagged_share)} of answered responses carry at least one theme")
    lines.append("")
    ti = data.theme_impact
    if len(ti):
        lines.append(f"Top themes by {name} impact (worst first; * small sample)")
        rows = [
            [
                r.tag + (" *" if r.small_sample else ""),
                f"{int(r.volume):,}",
                fmt_pct(r.share),
                fmt_num(r.score_with, signed=signed),
                fmt_num(r.impact, signed=True),
                fmt_interval(r.impact_low, r.impact_high),
                fmt_pct(r.detractor_share, 0),
            ]
            for r in ti.head(top).itertuples(index=False)
        ]
        lines += _table(
            [
                ("theme", 30, "<"),
                ("volume", 7, ">"),
                ("share", 6, ">"),
                (f"{name} with", 9, ">"),
                ("impact", 7, ">"),
                ("95% interval", 15, ">"),
                ("detr.", 5, ">"),
            ],
            rows,
        )
    else:
        lines.append("No themes to rank (no tags, or none on enough responses).")
    if len(data.segments):
        worst = data.segments.sort_values(["delta", "n"], ascending=[True, False]).head(worst_segments)
        lines += ["", f"Lowest segment values (vs. overall {name})"]
        rows = [
            [
                r.segment,
                r.value,
                f"{int(r.n):,}",
                fmt_num(r.score, signed=signed),
                fmt_num(r.delta, signed=True),
            ]
            for r in worst.itertuples(index=False)
        ]
        lines += _table(
            [("segment", 14, "<"), ("value", 18, "<"), ("n", 7, ">"), (name, 6, ">"), ("delta", 6, ">")], rows
        )
    lines += ["", f"Follow-ups open: {data.followups_open:,} (feedback followups export --out FILE)"]
    return "\n".join(lines)
