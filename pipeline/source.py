"""The source: survey exports (CSV/Parquet) and row validation with quarantine reasons."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import SourceConfig
from pipeline.errors import SchemaError, missing_columns
from pipeline.schema import SOURCE_REQUIRED, SURVEY_TYPES

log = logging.getLogger(__name__)

MISSING_ID_PREFIX = "missing-id-"

QUARANTINE_REASONS = {
    "missing_response_id": "the row has no response_id (a stable id was generated so it can be traced)",
    "unknown_survey_type": f"survey_type is not one of {sorted(SURVEY_TYPES)}",
    "missing_score": "score is empty or not a number",
    "score_out_of_range": "score is outside the survey type's scale "
    + ", ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in SURVEY_TYPES.items()),
    "missing_submitted_at": "submitted_at is empty or not a date",
    "enrichment_error": "a model stage failed on this row's batch (see detail)",
}


def read_export(path: str | Path) -> pd.DataFrame:
    """Read a survey export (.parquet, .csv or .tsv). Undecodable bytes become U+FFFD, never a crash.

    Raises:
        SchemaError: for an unknown file type.
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"Input file {file} not found (looked in {file.resolve().parent}).")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(file)
    if suffix in (".csv", ".tsv", ".txt"):
        return pd.read_csv(
            file,
            sep="\t" if suffix == ".tsv" else ",",
            encoding="utf-8",
            encoding_errors="replace",
            dtype={"response_id": "string", "comment": "string", "survey_type": "string"},
            keep_default_na=False,
            na_values=[""],
        )
    raise SchemaError(f"Cannot read {file}: expected a .parquet, .csv or .tsv file, found '{suffix}'.")


def conform(df: pd.DataFrame, config: SourceConfig | None = None) -> pd.DataFrame:
    """Rename mapped columns, fill a default survey type, check required columns, coerce types.

    Values that cannot be coerced become missing (and are quarantined later with a reason); rows are
    never dropped here. Rows without a response_id get a stable generated one (prefix
    ``missing-id-``) so that they can be stored and quarantined, not lost.

    Raises:
        SchemaError: naming the expected and the found columns when required columns are missing.
    """
    config = config or SourceConfig()
    out = df.rename(columns=config.columns).copy()
    if "survey_type" not in out.columns and config.default_survey_type:
        out["survey_type"] = config.default_survey_type
    if any(c not in out.columns for c in SOURCE_REQUIRED):
        raise missing_columns("survey source", SOURCE_REQUIRED, list(out.columns))
    ids = out["response_id"].astype("string").str.strip()
    missing = ids.isna() | (ids == "")
    if missing.any():
        raw = out.loc[missing].apply(lambda r: "|".join(map(str, r.tolist())), axis=1)
        ids = ids.copy()
        ids[missing] = [
            MISSING_ID_PREFIX + hashlib.blake2b(r.encode(), digest_size=6).hexdigest() for r in raw
        ]
    out["response_id"] = ids.astype(str)
    out["survey_type"] = out["survey_type"].astype("string").str.strip().str.lower().astype(object)
    out["score"] = pd.to_numeric(out["score"], errors="coerce").astype(float)
    out["submitted_at"] = _to_naive_utc(out["submitted_at"])
    out["comment"] = pd.Series([_to_text(v) for v in out["comment"].tolist()], index=out.index, dtype=object)
    return out


def _to_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _to_naive_utc(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")


def dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Collapse repeated response_ids: the last row wins (an upsert by key does the same).

    Returns:
        The de-duplicated frame, the number of exact repeats removed, and the number of conflicting
        repeats (same id, different content) resolved by keeping the last.
    """
    key = df["response_id"]
    dup = key.duplicated(keep="last")
    if not dup.any():
        return df, 0, 0
    exact = df.astype(object).map(str).duplicated(keep="last")
    n_exact = int((dup & exact).sum())
    return df.loc[~dup], n_exact, int(dup.sum()) - n_exact


@dataclass(frozen=True)
class Validated:
    """Rows split into those to enrich and those to quarantine (with a reason each)."""

    valid: pd.DataFrame
    quarantined: pd.DataFrame


def validate(df: pd.DataFrame) -> Validated:
    """Check each conformed row; rows that cannot be enriched go to quarantine with their reason.

    A missing or blank comment is not an error: it is enriched as a non-answer (its score still counts).
    """
    reason = pd.Series(pd.NA, index=df.index, dtype="object")
    detail = pd.Series("", index=df.index, dtype="object")

    def flag(mask: pd.Series, code: str, what: pd.Series | str) -> None:
        todo = mask & reason.isna()
        reason[todo] = code
        detail[todo] = what[todo].astype(str) if isinstance(what, pd.Series) else what

    flag(df["response_id"].str.startswith(MISSING_ID_PREFIX), "missing_response_id", "response_id is empty")
    known = df["survey_type"].isin(list(SURVEY_TYPES))
    flag(~known, "unknown_survey_type", "survey_type=" + df["survey_type"].astype(str))
    flag(df["score"].isna(), "missing_score", "score is empty or not a number")
    lo = df["survey_type"].map(lambda t: SURVEY_TYPES.get(t, (np.nan, np.nan))[0]).astype(float)
    hi = df["survey_type"].map(lambda t: SURVEY_TYPES.get(t, (np.nan, np.nan))[1]).astype(float)
    out_of_range = known & df["score"].notna() & ((df["score"] < lo) | (df["score"] > hi))
    flag(
        out_of_range,
        "score_out_of_range",
        "score=" + df["score"].astype(str) + " for " + df["survey_type"].astype(str),
    )
    flag(df["submitted_at"].isna(), "missing_submitted_at", "submitted_at is empty or not a date")
    bad = reason.notna()
    quarantined = quarantine_frame(df.loc[bad], reason[bad], detail[bad])
    return Validated(valid=df.loc[~bad].copy(), quarantined=quarantined)


def quarantine_frame(rows: pd.DataFrame, reason: pd.Series | str, detail: pd.Series | str) -> pd.DataFrame:
    """Quarantine records: response_id, reason, detail and the raw row as JSON."""
    raw = [json.dumps(r, default=str, ensure_ascii=False)[:20000] for r in rows.to_dict(orient="records")]
    return pd.DataFrame(
        {
            "response_id": rows["response_id"].astype(str).to_numpy(),
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason,
            "detail": detail.to_numpy() if isinstance(detail, pd.Series) else detail,
            "raw": raw,
        },
        index=rows.index,
    )


def segment_columns(df: pd.DataFrame, config: SourceConfig) -> list[str]:
    """Segment columns to carry through: configured ones, or every non-required column."""
    if config.segments is not None:
        missing = [c for c in config.segments if c not in df.columns]
        if missing:
            raise missing_columns("source.segments", config.segments, list(df.columns))
        return list(config.segments)
    return [c for c in df.columns if c not in SOURCE_REQUIRED and not c.startswith("_")]
