"""Ingest: load a CSV/Parquet export into the source table (upsert by key) and validate source rows
(quarantine reasons, the plausible time window, the run's watermark)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.ingest.pending import ROW_HASH
from pipeline.ingest.source import (
    Validated,
    apply_personal_data,
    conform,
    dedupe,
    read_export,
    segment_columns,
    validate,
)
from pipeline.migrations import COLUMN_NAMES_KEY, read_meta, upgrade, write_meta
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadReport:
    """What loading an export into the source table did."""

    path: str
    rows_read: int
    rows_loaded: int
    exact_duplicates: int
    conflicting_duplicates: int
    renamed: dict[str, str] = field(default_factory=dict)


def load_export(path: str | Path, wh: Warehouse, config: EnrichmentConfig) -> LoadReport:
    """Upsert a CSV/Parquet survey export into the source table, keyed by response_id.

    Repeated response_ids collapse to their last row (an upsert by key would do the same); both kinds
    of repeat are counted in the report, none is an error. The load holds the run lock (so two loads,
    or a load and a run, never create or write the same tables at once) and is refused at once while a
    run holds it (:class:`pipeline.warehouse.lock.RunLockHeld`).
    """
    from pipeline.erasure import erased_ids
    from pipeline.warehouse.lock import default_holder, run_lock

    raw = read_export(path)
    df = conform(raw, config.source)
    df, n_exact, n_conflict = dedupe(df)
    erased = erased_ids(wh, config, df["response_id"])
    if erased:  # an old export must not bring back an answer erased on request
        log.warning("export %s: %d row(s) of erased responses not loaded", path, len(erased))
        df = df[~df["response_id"].isin(erased)]
    with run_lock(
        wh,
        holder=default_holder(f"load of {Path(path).name}"),
        table=config.tables.lock,
        lease_s=config.run_lock.lease_seconds,
    ):
        upgrade(wh, config)  # a warehouse of an earlier release is upgraded before anything is written
        written = wh.upsert(config.tables.source, df, key=["response_id"])
        renamed = dict(df.attrs.get("renamed") or {})
        if renamed:  # every run records the export column names it stores under other names
            known = json.loads(read_meta(wh, config, COLUMN_NAMES_KEY) or "{}")
            write_meta(wh, config, COLUMN_NAMES_KEY, json.dumps({**known, **renamed}, ensure_ascii=False))
    if n_exact or n_conflict:
        log.info(
            "export %s: %d exact and %d conflicting repeated response_ids collapsed",
            path,
            n_exact,
            n_conflict,
        )
    return LoadReport(str(path), len(raw), written, n_exact, n_conflict, renamed)


def new_watermark(pending: pd.DataFrame, previous: tuple | None = None) -> tuple | None:
    """The largest (submitted_at, response_id) among the rows of a run (recorded for information only:
    what is pending is decided by content, never by this)."""
    ts = (
        pd.to_datetime(pending["submitted_at"], errors="coerce")
        if len(pending)
        else pd.Series(dtype="datetime64[us]")
    )
    rows = pending.loc[ts.notna()].assign(_ts=ts[ts.notna()]) if len(pending) else pending
    if len(rows) == 0:
        return previous
    top = rows.sort_values(["_ts", "response_id"]).iloc[-1]
    candidate = (pd.Timestamp(top["_ts"]).to_pydatetime(), str(top["response_id"]))
    return max(candidate, previous) if previous else candidate


def plausible_window(config: EnrichmentConfig, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The submission times a row may have: ``source.earliest_submitted_at`` to now plus
    ``source.max_future_days``."""
    now = now or utcnow()
    return config.source.earliest_submitted_at, now + timedelta(days=config.source.max_future_days)


def validate_rows(
    pending: pd.DataFrame, config: EnrichmentConfig, now: datetime | None = None
) -> tuple[Validated, list[str]]:
    """Conform and validate extracted rows; returns the split and the segment columns.

    Rows keep the key they have in the source (conforming never renames a stored row), and quarantine
    records carry the row's ``source_hash``.
    """
    if pending.empty:
        empty = pd.DataFrame(columns=["response_id", "reason", "detail", "raw", "source_hash"])
        return Validated(pending, empty), []
    df = conform(pending, config.source)
    if df.attrs.get("renamed"):
        log.info("source columns stored under warehouse names: %s", df.attrs["renamed"])
    if "response_id" in pending.columns:  # the stored key, as stored (conform strips and fills ids)
        stored = pending["response_id"]
        df["response_id"] = stored.astype(str).where(stored.notna(), df["response_id"])
    df = apply_personal_data(df, config.source)  # before anything is copied past the source table
    validated = validate(
        df.drop(columns=[ROW_HASH], errors="ignore"),
        plausible_window(config, now),
        config.source.whole_number_scores,
    )
    quarantined = validated.quarantined
    if ROW_HASH in df.columns:
        quarantined = quarantined.assign(source_hash=df.loc[quarantined.index, ROW_HASH].to_numpy())
        valid = validated.valid.assign(**{ROW_HASH: df.loc[validated.valid.index, ROW_HASH].to_numpy()})
        validated = Validated(valid, quarantined)
    return validated, segment_columns(df, config.source)
