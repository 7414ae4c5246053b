"""Emerging themes: topics and tags that are new or grow beyond their trailing baseline.

Plain functions over DataFrames (no warehouse, no Prefect). The current period is the last
``period_days`` days up to ``now``; the baseline is the ``baseline_periods`` periods before it. A key
(a topic id or a tag) raises an alert when, in the current period,

* it has at least ``min_count`` answers (small numbers never alert), and
* it is new (no answer in the baseline periods), or its share of the period's answers is at least
  ``min_ratio`` times its baseline share and it has at least ``min_increase`` answers more than the
  baseline share predicts.

Shares, not raw counts, are compared, so a busy week (more answers overall) does not make every theme
"grow". Each alert carries its evidence: the counts per period, the shares, and a few example answers.
Alert ids are ``kind:key:period_end``, so re-running the same night replaces, never duplicates.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from pipeline.errors import missing_columns
from pipeline.schema import ALERT_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertRules:
    """When a theme counts as emerging.

    Attributes:
        period_days: Length of the current period (and of each baseline period).
        baseline_periods: Trailing periods the baseline share is computed over.
        min_count: Answers a key needs in the current period before it can alert.
        min_ratio: Current share / baseline share needed for a growth alert.
        min_increase: Answers above the baseline expectation needed for a growth alert.
        n_examples: Example answers kept as evidence.
    """

    period_days: int = 7
    baseline_periods: int = 4
    min_count: int = 10
    min_ratio: float = 2.0
    min_increase: int = 5
    n_examples: int = 3

    def __post_init__(self) -> None:
        if self.period_days < 1 or self.baseline_periods < 1:
            raise ValueError("period_days and baseline_periods must be at least 1")
        if self.min_count < 1 or self.min_ratio <= 1:
            raise ValueError("min_count must be >= 1 and min_ratio > 1 (else every theme alerts)")

    @property
    def lookback(self) -> timedelta:
        """How far before ``now`` the rules look: the current period plus the baseline periods.

        Answers submitted earlier than ``now - lookback`` cannot change an alert, so a caller reading
        from the warehouse needs only ``submitted_at`` in ``[now - lookback, now]``.
        """
        return timedelta(days=self.period_days * (self.baseline_periods + 1))


def _long_form(enriched: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per (response, key) for kind 'topic' or 'tag', with submitted_at and text."""
    need = ["response_id", "submitted_at", "topic_id" if kind == "topic" else "tags"]
    if any(c not in enriched.columns for c in need):
        raise missing_columns(f"alerts ({kind})", need, list(enriched.columns))
    df = enriched
    if "is_non_answer" in df.columns:
        df = df[~df["is_non_answer"].astype(bool)]
    text = df["text_redacted"] if "text_redacted" in df.columns else pd.Series("", index=df.index)
    base = pd.DataFrame(
        {
            "response_id": df["response_id"].astype(str).to_numpy(),
            "submitted_at": pd.to_datetime(df["submitted_at"], errors="coerce").to_numpy(),
            "text": text.fillna("").astype(str).to_numpy(),
        }
    )
    if kind == "topic":
        ids = pd.to_numeric(df["topic_id"], errors="coerce").fillna(-1).astype(int).to_numpy()
        out = base.assign(key=[str(v) for v in ids])[ids >= 0]
        if "topic_label" in df.columns:
            out = out.assign(label=df["topic_label"].to_numpy()[ids >= 0])
        return out
    tags = [list(t) if isinstance(t, list | tuple | np.ndarray) else [] for t in df["tags"]]
    base = base.assign(key=tags).explode("key")
    return base[base["key"].notna()].assign(key=lambda f: f["key"].astype(str))


def alert_frame(rows: list[dict]) -> pd.DataFrame:
    """Alert rows as a frame with the table's column types, also when there are none (so that an empty
    frame creates the ``alerts`` table with the types later alerts need)."""
    out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    out["count"] = pd.to_numeric(out["count"]).astype("int64")
    for col in ("baseline", "ratio"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("period_start", "period_end", "created_at"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
    return out


def compute_alerts(
    enriched: pd.DataFrame,
    now: datetime | None = None,
    rules: AlertRules | None = None,
    kinds: tuple[str, ...] = ("topic", "tag"),
    created_at: datetime | None = None,
) -> pd.DataFrame:
    """Alerts for topics and tags that are new or grow beyond their trailing baseline.

    Args:
        enriched: ``feedback_enriched`` rows (response_id, submitted_at, topic_id, topic_label, tags,
            is_non_answer, text_redacted; the last three optional).
        now: End of the current period (default: the latest submitted_at).
        rules: Thresholds (defaults: :class:`AlertRules`).
        kinds: Which kinds of key to check.
        created_at: Timestamp written on the alerts (default: now).

    Returns:
        One row per alert, columns :data:`ALERT_COLUMNS` (empty when nothing emerges).
    """
    rules = rules or AlertRules()
    empty = alert_frame([])
    if enriched.empty:
        return empty
    times = pd.to_datetime(enriched["submitted_at"], errors="coerce")
    if times.notna().sum() == 0:
        return empty
    end = pd.Timestamp(now) if now is not None else times.max()
    period = timedelta(days=rules.period_days)
    start = end - period
    base_start = end - rules.lookback
    answered = enriched
    if "is_non_answer" in enriched.columns:
        answered = enriched[~enriched["is_non_answer"].astype(bool)]
    t_all = pd.to_datetime(answered["submitted_at"], errors="coerce")
    total_now = int(((t_all > start) & (t_all <= end)).sum())
    total_base = int(((t_all > base_start) & (t_all <= start)).sum())
    if total_now == 0:
        return empty
    edges = [base_start + i * period for i in range(rules.baseline_periods + 2)]
    period_totals = [int(((t_all > a) & (t_all <= b)).sum()) for a, b in zip(edges, edges[1:], strict=False)]
    made = pd.Timestamp(created_at or datetime.now()).as_unit("us")
    rows: list[dict] = []
    for kind in kinds:
        long = _long_form(enriched, kind)
        long = long[(long["submitted_at"] > base_start) & (long["submitted_at"] <= end)]
        for key, grp in long.groupby("key", sort=True):
            current = grp[grp["submitted_at"] > start]
            count = int(current["response_id"].nunique())
            if count < rules.min_count:
                continue
            base_count = int(grp.loc[grp["submitted_at"] <= start, "response_id"].nunique())
            base_share = base_count / total_base if total_base else 0.0
            expected = base_share * total_now
            if base_count == 0:
                reason, ratio = "new", None
            else:
                ratio = (count / total_now) / base_share
                if ratio < rules.min_ratio or count - expected < rules.min_increase:
                    continue
                reason = "growth"
            per_period = [
                int(grp.loc[(grp["submitted_at"] > a) & (grp["submitted_at"] <= b), "response_id"].nunique())
                for a, b in zip(edges, edges[1:], strict=False)
            ]
            examples = (
                current.sort_values(["submitted_at", "response_id"], ascending=[False, True])
                .drop_duplicates("text")
                .head(rules.n_examples)
            )
            label = None
            if "label" in grp.columns and grp["label"].notna().any():
                label = str(grp["label"].dropna().iloc[-1])
            evidence = {
                "reason": reason,
                "share_now": round(count / total_now, 4),
                "share_baseline": round(base_share, 4),
                "answers_now": total_now,
                "answers_baseline": total_base,
                "periods": [
                    {"start": a.isoformat(), "end": b.isoformat(), "count": c, "answers": n}
                    for a, b, c, n in zip(edges, edges[1:], per_period, period_totals, strict=False)
                ],
                "examples": [
                    {"response_id": r, "text": t[:300]}
                    for r, t in zip(examples["response_id"], examples["text"], strict=True)
                ],
            }
            rows.append(
                {
                    "alert_id": f"{kind}:{key}:{end:%Y-%m-%d}",
                    "kind": kind,
                    "key": str(key),
                    "label": label if kind == "topic" else str(key),
                    "period": f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
                    "period_start": start.as_unit("us"),
                    "period_end": end.as_unit("us"),
                    "count": count,
                    "baseline": round(float(expected), 3),
                    "ratio": None if ratio is None else round(float(ratio), 3),
                    "reason": reason,
                    "evidence": json.dumps(evidence, ensure_ascii=False),
                    "created_at": made,
                }
            )
    out = alert_frame(rows)
    log.info("alerts: %d emerging theme(s) in %s", len(out), f"{start:%Y-%m-%d}..{end:%Y-%m-%d}")
    return out
