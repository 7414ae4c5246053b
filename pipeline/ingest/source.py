"""The source: survey exports (CSV/Parquet) and row validation with quarantine reasons."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import SourceConfig
from pipeline.errors import SchemaError, first_line, missing_columns
from pipeline.prepare import is_missing
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
    "implausible_submitted_at": "submitted_at is before source.earliest_submitted_at or more than "
    "source.max_future_days after the run's clock",
    "score_not_whole": "the score has a fraction, and source.whole_number_scores says the survey type's "
    "scores are whole numbers (NPS 7.5 is not an NPS answer)",
    "enrichment_error": "a model stage failed on this row's batch (see detail)",
}

# C0 and C1 control characters but tab, newline and carriage return: a NUL loses a PostgreSQL load, and
# none of them is text a person wrote.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value: object) -> object:
    """A text value without control characters (other values unchanged)."""
    return _CONTROL_RE.sub("", value) if isinstance(value, str) and _CONTROL_RE.search(value) else value


def snake_case(name: str) -> str:
    """A column name as a warehouse identifier: ``Customer Segment`` -> ``customer_segment``.

    Names that already are lower-case identifiers (``channel``, ``_internal``) are kept as they are.
    """
    if re.fullmatch(r"[a-z_][a-z0-9_]*", str(name)):
        return str(name)
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "column"
    return text if re.match(r"[a-z_]", text) else f"c_{text}"


def normalise_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename columns to snake_case identifiers; returns the frame and the ``{original: new}`` changes.

    Raises:
        SchemaError: When two columns normalise to the same name (naming both).
    """
    mapping = {str(c): snake_case(str(c)) for c in df.columns}
    seen: dict[str, str] = {}
    for original, new in mapping.items():
        if new in seen:
            raise SchemaError(
                f"Columns {seen[new]!r} and {original!r} both become {new!r} as warehouse column names. "
                "Rename or drop one of them in the export (or map one with source.columns)."
            )
        seen[new] = original
    changed = {o: n for o, n in mapping.items() if o != n}
    if changed:
        log.info("column names normalised for the warehouse: %s", changed)
    return df.rename(columns=changed), changed


def _refuse_containers(df: pd.DataFrame) -> None:
    """Refuse list/dict-valued columns: a survey export has one value per cell."""
    for column in df.columns:
        if df[column].dtype != object:
            continue
        for value in df[column]:
            if isinstance(value, list | tuple | dict | set | np.ndarray):
                raise SchemaError(
                    f"Column {column!r} holds {type(value).__name__} values (e.g. {str(value)[:60]!r}), "
                    "not one value per cell. Join them into text first (e.g. with '|'), or drop the column."
                )


def read_export(path: str | Path) -> pd.DataFrame:
    """Read a survey export or labelled file (.parquet/.pq, .csv/.txt, .tsv).

    CSV text is UTF-8 (a BOM is fine). A file that is not UTF-8 is read as Windows-1252 (what
    spreadsheet programs write for "CSV" in western languages) when that explains it better, with a
    warning; a UTF-8 file with a few broken bytes keeps its text and the broken bytes become U+FFFD,
    with a warning that counts them. Never a crash, never a silent change.

    Raises:
        FileNotFoundError: for a missing file.
        SchemaError: for an unknown file type, or a file that cannot be parsed as its type says.
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"Input file {file} not found (looked in {file.resolve().parent}).")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(file)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise SchemaError(
                f"Cannot read {file} as Parquet ({first_line(exc)}). Is it really a Parquet file? "
                "A CSV file needs a .csv name."
            ) from exc
    if suffix in (".csv", ".tsv", ".txt"):
        sep = "\t" if suffix == ".tsv" else ","
        text = _decode(file)
        if not text.strip():
            raise SchemaError(
                f"{file} is empty: expected a header row (e.g. text,tags or response_id,...,comment) and rows."
            )
        try:
            with warnings.catch_warnings():
                # more fields in the rows than in the header: an error, not a silent index column
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return pd.read_csv(
                    io.StringIO(text),
                    sep=sep,
                    index_col=False,
                    dtype={"response_id": "string", "comment": "string", "survey_type": "string"},
                    keep_default_na=False,
                    na_values=[""],
                )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, pd.errors.ParserWarning) as exc:
            raise SchemaError(
                f"Cannot parse {file} as {'tab' if sep != ',' else 'comma'}-separated values "
                f"({first_line(exc)}). Expected {'tabs' if sep != ',' else 'commas'} between fields, as "
                "many in every row as in the header, and double quotes around any text that holds one "
                '(a ";"-separated file must be converted).'
            ) from exc
    raise SchemaError(
        f"Cannot read {file}: expected a .parquet/.pq, .csv/.txt or .tsv file, found '{suffix}'."
    )


#: What the non-ASCII characters of a Windows-1252 file of survey answers in the project's languages are:
#: accented letters and typographic punctuation (not, say, "ÿþ", which is a broken UTF-8 byte pair).
_CP1252_TEXT = frozenset("àáâãäçèéêëìíîïñòóôõöùúûüÀÁÂÃÄÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜœŒßºª€£’‘“”–—…«»°·¡¿")


def _decode(file: Path) -> str:
    """The file's text: UTF-8, or Windows-1252 when that explains the bytes better (see read_export)."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    utf8 = data.decode("utf-8-sig", errors="replace")
    broken = utf8.count("\ufffd")
    fine = sum(1 for ch in utf8 if ord(ch) > 127 and ch != "\ufffd")
    western = data.decode("cp1252", errors="replace")
    odd = [ch for ch in western if ord(ch) > 127]
    plausible = sum(1 for ch in odd if ch in _CP1252_TEXT)
    if broken > fine and plausible >= 0.8 * len(odd):
        log.warning("%s is not UTF-8: read as Windows-1252 (cp1252). Save it as UTF-8 to be sure.", file)
        return data.decode("cp1252", errors="replace")
    log.warning("%s: %d byte sequence(s) are not valid UTF-8 and were replaced by U+FFFD.", file, broken)
    return utf8


#: The file types the commands write (a table: CSV or Parquet).
OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")


def check_output_path(path: str | Path) -> Path:
    """An output file path whose type a command can write, checked before any work is done.

    Raises:
        SchemaError: for another extension (a ``.xlsx`` would otherwise get CSV text under that name).
    """
    out = Path(path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise SchemaError(f"Cannot write {out}: expected a .csv or .parquet file name, found '{out.suffix}'.")
    return out


def file_ids(df: pd.DataFrame) -> pd.Series:
    """The ``id`` column of a file as text (a missing id stays missing, never the text "nan"), or the row
    number when the file has no ``id`` column."""
    if "id" not in df.columns:
        return pd.Series([str(i) for i in range(len(df))], index=df.index, dtype=object)
    values = [None if is_missing(v) else str(v) for v in df["id"]]
    return pd.Series(values, index=df.index, dtype=object)


def conform(df: pd.DataFrame, config: SourceConfig | None = None) -> pd.DataFrame:
    """Rename mapped columns, fill a default survey type, check required columns, coerce types.

    Values that cannot be coerced become missing (and are quarantined later with a reason); rows are
    never dropped here. Rows without a response_id get a stable generated one (prefix
    ``missing-id-``) so that they can be stored and quarantined, not lost.

    Raises:
        SchemaError: naming the expected and the found columns when required columns are missing.
    """
    config = config or SourceConfig()
    out = df.rename(columns=config.columns)
    out, renamed = normalise_columns(out)
    _refuse_containers(out)
    out = out.copy()
    out.attrs["renamed"] = renamed
    for column in out.columns:  # control characters out of every text cell, before any backend
        if out[column].dtype == object or isinstance(out[column].dtype, pd.StringDtype):
            out[column] = out[column].map(clean_text, na_action="ignore")
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


def validate(
    df: pd.DataFrame,
    plausible: tuple[datetime, datetime] | None = None,
    whole_number_scores: Iterable[str] = ("nps",),
) -> Validated:
    """Check each conformed row; rows that cannot be enriched go to quarantine with their reason.

    A missing or blank comment is not an error: it is enriched as a non-answer (its score still counts).

    Args:
        df: Conformed rows.
        plausible: ``(earliest, latest)`` submission times; rows outside are quarantined as
            ``implausible_submitted_at`` (None: no check).
        whole_number_scores: Survey types whose scores must be whole numbers (``score_not_whole``).
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
    whole = df["survey_type"].isin(list(whole_number_scores)) & df["score"].notna()
    flag(
        whole & (df["score"] % 1 != 0),
        "score_not_whole",
        "score=" + df["score"].astype(str) + " for " + df["survey_type"].astype(str),
    )
    flag(df["submitted_at"].isna(), "missing_submitted_at", "submitted_at is empty or not a date")
    if plausible is not None:
        earliest, latest = (pd.Timestamp(t) for t in plausible)
        at = df["submitted_at"]
        outside = at.notna() & ((at < earliest) | (at > latest))
        flag(
            outside,
            "implausible_submitted_at",
            "submitted_at=" + at.astype(str) + f" outside {earliest:%Y-%m-%d} .. {latest:%Y-%m-%d %H:%M}",
        )
    bad = reason.notna()
    quarantined = quarantine_frame(df.loc[bad], reason[bad], detail[bad])
    return Validated(valid=df.loc[~bad].copy(), quarantined=quarantined)


def quarantine_frame(rows: pd.DataFrame, reason: pd.Series | str, detail: pd.Series | str) -> pd.DataFrame:
    """Quarantine records: response_id, reason, detail and the row as JSON with every text value
    PII-redacted (the source table keeps the original; the quarantine is no second copy of it)."""
    from pipeline.prepare import redact_pii

    def redacted(value: object) -> object:
        return redact_pii(value)[0] if isinstance(value, str) and value else value

    raw = [
        json.dumps({k: redacted(v) for k, v in r.items()}, default=str, ensure_ascii=False)[:20000]
        for r in rows.to_dict(orient="records")
    ]
    return pd.DataFrame(
        {
            "response_id": rows["response_id"].astype(str).to_numpy(),
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason,
            "detail": detail.to_numpy() if isinstance(detail, pd.Series) else detail,
            "raw": raw,
        },
        index=rows.index,
    )


PSEUDONYM_KEY_ENV = "FEEDBACK_PSEUDONYM_KEY"


def pseudonym(value: object) -> object:
    """A keyed hash of a value (HMAC-SHA256 with ``FEEDBACK_PSEUDONYM_KEY``, else SHA-256): ``h:`` and 16
    hex digits. Missing values stay missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    key = os.environ.get(PSEUDONYM_KEY_ENV, "").encode()
    digest = (
        hmac.new(key, str(value).encode(), hashlib.sha256) if key else hashlib.sha256(str(value).encode())
    )
    return "h:" + digest.hexdigest()[:16]


def apply_personal_data(df: pd.DataFrame, config: SourceConfig) -> pd.DataFrame:
    """Drop or hash the columns ``source.personal_data`` names (a new frame; the input is untouched).

    Raises:
        SchemaError: When a named column is a required one (response_id, comment ...).
    """
    if not config.personal_data:
        return df
    required = [c for c in config.personal_data if c in SOURCE_REQUIRED]
    if required:
        raise SchemaError(
            f"source.personal_data names required column(s) {required}; the pipeline needs them. The "
            "comment is redacted anyway; list only segment columns such as email or phone."
        )
    drop = [c for c, how in config.personal_data.items() if how == "drop" and c in df.columns]
    out = df.drop(columns=drop)
    for column, how in config.personal_data.items():
        if how == "hash" and column in out.columns:
            out[column] = out[column].map(pseudonym).astype(object)
    return out


def segment_columns(df: pd.DataFrame, config: SourceConfig) -> list[str]:
    """Segment columns to carry through: configured ones, or every non-required column."""
    if config.segments is not None:
        missing = [c for c in config.segments if c not in df.columns]
        if missing:
            raise missing_columns("source.segments", config.segments, list(df.columns))
        return list(config.segments)
    return [c for c in df.columns if c not in SOURCE_REQUIRED and not c.startswith("_")]
