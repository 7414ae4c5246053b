"""Close the loop as a queue: the ``followups`` table.

The nightly run adds candidates (:func:`add_candidates`): answers of the last
``followups.lookback_days`` that match a rule of ``followups.rules`` (in order, the first match wins:
e.g. detractors with a critical theme to call back, promoters to thank or invite to a review). A row
that exists is never rewritten by a run, so a person's status, owner and note stay. People work the
queue with :func:`set_followup` (status ``new`` -> ``contacted`` -> ``resolved`` / ``won't fix``, an
owner, a note; with who and when); :func:`export_open` writes the open queue as CSV
(``feedback followups export``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Filters, Params, Scope
from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig, FollowupRule
from pipeline.errors import ConfigError
from pipeline.warehouse.base import Warehouse
from pipeline.warehouse.tables import declared_columns

STATUSES = ("new", "contacted", "resolved", "won't fix")
OPEN_STATUSES = ("new", "contacted")
FOLLOWUP_COLUMNS = declared_columns("followups")


def _rule_sql(scope: Scope, rule: FollowupRule, p: Params) -> str:
    conds = {"detractor": ["det"], "promoter": ["pro"], "passive": ["NOT det", "NOT pro"]}[rule.group]
    conds = ["NOT is_non_answer", "score IS NOT NULL", *conds]
    if rule.sentiment:
        conds.append(f"sentiment_label IN {p.many(list(rule.sentiment))}")
    if rule.themes:
        names = p.many(list(rule.themes))
        conds.append(
            f"{ROW_KEY} IN (SELECT {ROW_KEY} FROM etags WHERE tag IN {names} OR parent_tag IN {names})"
        )
    elif rule.any_theme:
        conds.append(f"{ROW_KEY} IN (SELECT {ROW_KEY} FROM etags)")
    return " AND ".join(conds)


def candidates(
    wh: Warehouse, *, config: EnrichmentConfig | None = None, now: datetime | None = None
) -> pd.DataFrame:
    """Answers that a rule selects and that are not in the queue yet (see the module docstring).

    Args:
        wh: The warehouse.
        config: ``followups`` rules and table names.
        now: End of the lookback (default: the latest ``submitted_at`` stored).
    """
    config = config or EnrichmentConfig()
    scope = Scope.of(wh, config)
    cols = [c for c in FOLLOWUP_COLUMNS]
    if scope.empty or not config.followups.rules:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    t = config.tables
    if now is None:
        now = wh.max_value(t.enriched, "submitted_at")
        if now is None:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    end = pd.Timestamp(now).to_pydatetime()
    filters = Filters(
        start=end - timedelta(days=config.followups.lookback_days), end=end + timedelta(microseconds=1)
    )
    customer = config.source.customer_id or "customer_id"
    extra = [customer] if customer in scope.enriched_columns else []
    p = Params()
    head = scope.ctes(filters, p, extra=extra)
    queued = (
        # NOT EXISTS, not NOT IN: PostgreSQL plans NOT IN (subquery) as a per-row subplan once the ids
        # outgrow work_mem; NOT EXISTS is an anti-join on both backends (response_id is never NULL).
        f" AND NOT EXISTS (SELECT 1 FROM {scope.q(t.followups)} q WHERE q.response_id = base.response_id)"
        if wh.table_exists(t.followups)
        else ""
    )
    branches = []
    for i, rule in enumerate(config.followups.rules):
        cust = scope.col(customer) if extra else "CAST(NULL AS TEXT)"
        branches.append(
            f"SELECT {i} AS rule, response_id, CAST({cust} AS TEXT) AS customer_id, survey_type, score, submitted_at "
            f"FROM base WHERE {_rule_sql(scope, rule, p)}{queued}"
        )
    rows = scope.run(f"{head} {' UNION ALL '.join(branches)}", p)
    rows = rows.sort_values(["rule", "submitted_at", "response_id"], ascending=[True, False, True])
    rows = rows.drop_duplicates("response_id", keep="first")
    rules = config.followups.rules
    stamp = pd.Timestamp(utcnow()).as_unit("us")
    out = pd.DataFrame(
        {
            "response_id": rows["response_id"].astype(str),
            "customer_id": rows["customer_id"].astype(object),
            "survey_type": rows["survey_type"],
            "score": rows["score"].astype(float),
            "submitted_at": pd.to_datetime(rows["submitted_at"]).astype("datetime64[us]"),
            "reason": [rules[int(i)].name for i in rows["rule"]],
            "action": [rules[int(i)].action for i in rows["rule"]],
            "status": "new",
            "owner": None,
            "note": None,
            "created_at": stamp,
            "created_by": "nightly",
            "updated_at": pd.NaT,
            "updated_by": None,
        }
    )
    out["updated_at"] = out["updated_at"].astype("datetime64[us]")
    for c in ("owner", "note", "updated_by"):
        out[c] = out[c].astype(object)
    return out[cols].reset_index(drop=True)


def add_candidates(
    wh: Warehouse, *, config: EnrichmentConfig | None = None, now: datetime | None = None
) -> int:
    """Insert the new candidates into ``followups`` (existing rows untouched); returns how many."""
    config = config or EnrichmentConfig()
    if not config.followups.enabled:
        return 0
    with wh.transaction():
        new = candidates(wh, config=config, now=now)
        if new.empty and wh.table_exists(config.tables.followups):
            return 0
        return int(wh.upsert(config.tables.followups, new, key=["response_id"]))


def followups(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    statuses: tuple[str, ...] | list[str] | None = None,
    owner: str | None = None,
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """The queue (rows of ``followups``), newest answer first.

    Args:
        wh: The warehouse (or a side file).
        filters: Only follow-ups of answers inside this slice (read against the enriched table).
        statuses: Only these statuses (None: all).
        owner: Only this owner's.
        config: Table names.
    """
    config = config or EnrichmentConfig()
    t = config.tables
    if not wh.table_exists(t.followups):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FOLLOWUP_COLUMNS})
    p = Params()
    conds: list[str] = []
    if statuses:
        conds.append(f"f.status IN {p.many(list(statuses))}")
    if owner:
        conds.append(f"f.owner = {p.add(owner)}")
    head = ""
    scope = Scope.of(wh, config)
    if filters is not None and not scope.empty:
        head = scope.ctes(filters, p, tags=False) + " "
        conds.append("f.response_id IN (SELECT response_id FROM base)")
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    rows = wh.sql(
        f"{head}SELECT f.* FROM {wh._qualified(t.followups)} f{where} ORDER BY f.submitted_at DESC, f.response_id",
        p.values,
    )
    return rows.reset_index(drop=True)


def answer_fields(
    wh: Warehouse, response_ids: list[str], *, config: EnrichmentConfig | None = None
) -> dict[str, dict]:
    """A follow-up's fields that come from the answer (customer id, survey type, score, submitted_at),
    per response id found in the enriched table (an empty dict when the warehouse has no such table)."""
    config = config or EnrichmentConfig()
    t = config.tables
    if not response_ids or not wh.table_exists(t.enriched):
        return {}
    columns = set(wh.columns(t.enriched))
    customer = config.source.customer_id or "customer_id"
    wanted = [c for c in ("response_id", "survey_type", "score", "submitted_at", customer) if c in columns]
    rows = wh.read(t.enriched, wanted, where={"response_id": response_ids})
    out: dict[str, dict] = {}
    for r in rows.to_dict("records"):
        fields = {k: v for k, v in r.items() if k in ("survey_type", "score", "submitted_at")}
        if customer in r:
            fields["customer_id"] = None if pd.isna(r[customer]) else str(r[customer])
        out[str(r["response_id"])] = fields
    return out


def set_followup(
    wh: Warehouse,
    response_id: str,
    *,
    who: str,
    status: str | None = None,
    owner: str | None = None,
    note: str | None = None,
    config: EnrichmentConfig | None = None,
) -> dict:
    """Change a follow-up's status, owner or note (only the fields given), recording who and when.

    Works on any warehouse: on a side file that lacks the row, a row with the edit alone is written
    (:func:`pipeline.analysis.corrections.merge_edits` completes it from the warehouse).

    Returns:
        The row as written.
    """
    config = config or EnrichmentConfig()
    if status is not None and status not in STATUSES:
        raise ConfigError(f"Unknown follow-up status {status!r}: expected one of {list(STATUSES)}.")
    if not isinstance(who, str) or not who.strip():
        raise ConfigError("A follow-up edit needs who made it: pass who='name or e-mail'.")
    t = config.tables
    have = (
        wh.read(t.followups, where={"response_id": [str(response_id)]})
        if wh.table_exists(t.followups)
        else pd.DataFrame()
    )
    if len(have):
        row = have.iloc[0].to_dict()
    else:  # a follow-up no rule proposed: the answer's own fields where this warehouse holds it
        row = {c: None for c in FOLLOWUP_COLUMNS} | {"response_id": str(response_id), "status": "new"}
        found = answer_fields(wh, [str(response_id)], config=config).get(str(response_id))
        if found is not None:  # (on the dashboard's side file the next run's merge completes the row)
            stamp = pd.Timestamp(utcnow()).as_unit("us")
            row |= found | {"reason": "manual", "created_at": stamp, "created_by": who.strip()}
    for key, value in (("status", status), ("owner", owner), ("note", note)):
        if value is not None:
            row[key] = value
    row["updated_at"] = pd.Timestamp(utcnow()).as_unit("us")
    row["updated_by"] = who.strip()
    frame = pd.DataFrame([row], columns=FOLLOWUP_COLUMNS)
    for c in ("submitted_at", "created_at", "updated_at"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    frame["score"] = pd.to_numeric(frame["score"]).astype(float)
    for c in FOLLOWUP_COLUMNS:
        if c not in ("submitted_at", "created_at", "updated_at", "score"):
            frame[c] = frame[c].astype(object)
    wh.upsert(t.followups, frame, key=["response_id"])
    return row


def export_open(wh: Warehouse, path: str | Path, *, config: EnrichmentConfig | None = None) -> int:
    """Write the open queue (status new or contacted) as spreadsheet-safe CSV; returns the number of rows."""
    from pipeline.analysis.csv_export import write_csv

    rows = followups(wh, statuses=OPEN_STATUSES, config=config)
    write_csv(rows, path)
    return len(rows)
