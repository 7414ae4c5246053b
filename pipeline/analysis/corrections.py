"""Corrections that stick: a person's themes and sentiment for an answer, with who and when.

* Themes go to ``tag_labels`` (``id`` = the response id, ``tags``, ``labeller``, ``labelled_at``; the
  text is left empty: it is the stored answer's), the table the tagger's weekly retrain already learns
  from (:func:`pipeline.tagging.data.read_label_table`). An empty list means "no theme applies".
* Sentiment goes to ``sentiment_labels`` (``response_id``, ``sentiment_label``, ``note``, ``labeller``,
  ``labelled_at``); the weekly sentiment retrain reads it (:func:`pipeline.sentiment.retrain.stored_scores`).

Nothing the nightly run writes touches these tables, so re-enriching an answer never overwrites a
correction, and every analysis reads the correction over the model's label
(:class:`pipeline.analysis.filters.Scope`). The last correction of an answer wins.

The write functions take any warehouse object: the dashboard may write into a small side DuckDB file
during a nightly run and :func:`merge_edits` moves the edits into the warehouse afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.analysis.filters import SENTIMENT_VALUES
from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.errors import ConfigError
from pipeline.warehouse.base import Warehouse

CORRECTION_COLUMNS = ["response_id", "kind", "value", "note", "labeller", "labelled_at"]


def _now() -> pd.Timestamp:
    return pd.Timestamp(utcnow()).as_unit("us")


def _who(who: str) -> str:
    if not isinstance(who, str) or not who.strip():
        raise ConfigError("A correction needs who made it: pass who='name or e-mail'.")
    return who.strip()


def correct_themes(
    wh: Warehouse,
    response_id: str,
    themes: Sequence[str],
    *,
    who: str,
    lang: str | None = None,
    config: EnrichmentConfig | None = None,
) -> dict:
    """Set the themes of an answer (replacing the model's in every analysis and the next retrain).

    Args:
        wh: Any warehouse (the main one, or a side file merged later with :func:`merge_edits`).
        response_id: The answer.
        themes: Its themes; empty: none applies.
        who: Who corrected it.
        lang: The answer's language, when known.
        config: Table names.

    Returns:
        The row written.
    """
    config = config or EnrichmentConfig()
    if isinstance(themes, str):
        raise ConfigError(f"themes must be a list of theme names, got the string {themes!r}.")
    clean = list(dict.fromkeys(str(t).strip() for t in themes if str(t).strip()))
    row = {
        "id": str(response_id),
        "text": None,
        "tags": clean,
        "lang": lang,
        "labeller": _who(who),
        "labelled_at": _now(),
    }
    frame = pd.DataFrame([row])
    frame["tags"] = pd.Series([clean], dtype=object)
    for c in ("text", "lang"):
        frame[c] = frame[c].astype(object)
    wh.upsert(config.tables.tag_labels, frame, key=["id"])
    return row


def correct_sentiment(
    wh: Warehouse,
    response_id: str,
    label: str,
    *,
    who: str,
    note: str | None = None,
    config: EnrichmentConfig | None = None,
) -> dict:
    """Set the sentiment of an answer (``negative``, ``neutral`` or ``positive``).

    Returns:
        The row written.
    """
    config = config or EnrichmentConfig()
    if label not in SENTIMENT_VALUES:
        raise ConfigError(f"Unknown sentiment {label!r}: expected one of {list(SENTIMENT_VALUES)}.")
    row = {
        "response_id": str(response_id),
        "sentiment_label": label,
        "note": note,
        "labeller": _who(who),
        "labelled_at": _now(),
    }
    frame = pd.DataFrame([row])
    frame["note"] = frame["note"].astype(object)
    wh.upsert(config.tables.sentiment_labels, frame, key=["response_id"])
    return row


def corrections(
    wh: Warehouse, response_ids: Sequence[str] | None = None, *, config: EnrichmentConfig | None = None
) -> pd.DataFrame:
    """Every correction (or those of some answers), newest first.

    Returns:
        :data:`CORRECTION_COLUMNS`: ``kind`` is ``themes`` (``value``: the list) or ``sentiment``.
    """
    config = config or EnrichmentConfig()
    t = config.tables
    parts = []
    where = {"id": [str(r) for r in response_ids]} if response_ids is not None else None
    if wh.table_exists(t.tag_labels):
        rows = wh.read(t.tag_labels, ["id", "text", "tags", "labeller", "labelled_at"], where=where)
        rows = rows[
            rows["text"].isna() | (rows["text"].astype(str) == "")
        ]  # corrections, not imported examples
        parts.append(
            pd.DataFrame(
                {
                    "response_id": rows["id"].astype(str),
                    "kind": "themes",
                    "value": rows["tags"].map(lambda v: list(v) if v is not None else []),
                    "note": None,
                    "labeller": rows["labeller"],
                    "labelled_at": rows["labelled_at"],
                }
            )
        )
    if wh.table_exists(t.sentiment_labels):
        w2 = {"response_id": where["id"]} if where else None
        rows = wh.read(t.sentiment_labels, where=w2)
        parts.append(
            pd.DataFrame(
                {
                    "response_id": rows["response_id"].astype(str),
                    "kind": "sentiment",
                    "value": rows["sentiment_label"],
                    "note": rows["note"],
                    "labeller": rows["labeller"],
                    "labelled_at": rows["labelled_at"],
                }
            )
        )
    parts = [x for x in parts if len(x)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CORRECTION_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("labelled_at", ascending=False, kind="stable").reset_index(drop=True)[
        CORRECTION_COLUMNS
    ]


def _newer(source: pd.DataFrame, target: pd.DataFrame, key: str, stamp: str) -> pd.DataFrame:
    if target.empty:
        return source
    known = target.set_index(key)[stamp]
    old = source[key].map(known)
    return source[old.isna() | (pd.to_datetime(source[stamp]) > pd.to_datetime(old))]


def merge_edits(
    source: Warehouse, target: Warehouse, *, config: EnrichmentConfig | None = None
) -> dict[str, int]:
    """Move people's edits (corrections, follow-up changes) from a side warehouse into the warehouse.

    A row is copied when the target lacks it or holds an older version of it (by ``labelled_at`` /
    ``updated_at``), so merging twice changes nothing and never undoes a newer edit.

    Returns:
        Rows copied per table.
    """
    config = config or EnrichmentConfig()
    t = config.tables
    out: dict[str, int] = {}
    for table, key, stamp in (
        (t.tag_labels, "id", "labelled_at"),
        (t.sentiment_labels, "response_id", "labelled_at"),
        (t.followups, "response_id", "updated_at"),
    ):
        if not source.table_exists(table):
            continue
        rows = source.read(table)
        if table == t.followups:
            rows = rows[rows["updated_at"].notna()]  # only rows a person touched
        if rows.empty:
            out[table] = 0
            continue
        ids = rows[key].astype(str).tolist()
        have = (
            target.read(table, [key, stamp], where={key: ids})
            if target.table_exists(table)
            else pd.DataFrame()
        )
        new = _newer(rows, have, key, stamp)
        if table == t.followups and len(new):
            new = _keep_candidate_fields(target, table, new, config)
        out[table] = int(target.upsert(table, new, key=[key])) if len(new) else 0
    return out


def _keep_candidate_fields(
    target: Warehouse, table: str, edits: pd.DataFrame, config: EnrichmentConfig
) -> pd.DataFrame:
    """Edits carry status/owner/note; the candidate's own fields come from the target when it has them,
    else (a follow-up no rule proposed) from the answer in the target's enriched table."""
    from pipeline.analysis.followups import answer_fields

    ids = edits["response_id"].astype(str).tolist()
    have = target.read(table, where={"response_id": ids}) if target.table_exists(table) else pd.DataFrame()
    answers = pd.DataFrame.from_dict(answer_fields(target, ids, config=config), orient="index")
    if have.empty and answers.empty:
        return edits
    merged = edits.set_index("response_id")
    base = have.set_index("response_id") if len(have) else answers
    if len(have) and len(answers):
        base = base.combine_first(answers)
    for col in (
        "customer_id",
        "survey_type",
        "score",
        "submitted_at",
        "reason",
        "action",
        "created_at",
        "created_by",
    ):
        if col in base.columns and col in merged.columns:
            merged[col] = merged[col].where(merged[col].notna(), base[col].reindex(merged.index))
    if "reason" in merged.columns:  # no rule proposed it: a person opened it
        proposed = merged.index.isin(have["response_id"].astype(str)) if len(have) else False
        merged["reason"] = merged["reason"].where(merged["reason"].notna() | proposed, "manual")
    return merged.reset_index()
