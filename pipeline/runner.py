"""The steps of one enrichment run against a warehouse, as plain functions.

``flows/nightly_enrichment.py`` wires these into Prefect tasks; :func:`run_enrichment` runs the same
steps without Prefect (tests, notebooks). Rows in = rows enriched + rows quarantined, always.

Nothing is lost: the rows to work on are decided by their content (:mod:`pipeline.pending`), a batch's
enriched rows, tags, sentences and quarantine records commit in one transaction (:func:`write_batch`),
and every run holds the run lock and is recorded from start to end (:mod:`pipeline.runs`). Named fault
points (:mod:`pipeline.faults`) let the tests kill a real run after any step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.embed import CachedEmbedder, build_embedder
from pipeline.embed.base import Progress
from pipeline.embed.response import response_vectors
from pipeline.enrich import EnrichedBatch, Models, enrich_batch, prepare_batch
from pipeline.faults import fault_point
from pipeline.migrations import COLUMN_NAMES_KEY, read_meta, upgrade, write_meta
from pipeline.model_store import open_store
from pipeline.pending import ROW_HASH, iter_pending, removed_ids
from pipeline.prepare import prepare_config_of
from pipeline.runs import SUCCESS, RunSession, RunSummary, new_run_id, run_session, write_run
from pipeline.schema import TABLE_KEYS
from pipeline.sentiment import sentiment_for_run
from pipeline.source import (
    Validated,
    apply_personal_data,
    conform,
    dedupe,
    quarantine_frame,
    read_export,
    segment_columns,
    validate,
)
from pipeline.tagging.workflow import encoder_spec, tagger_for_run
from pipeline.taxonomy import load_taxonomy
from pipeline.topic_registry import first_match, match_topics
from pipeline.topic_versions import last_fit_at, load_promoted_topics, promote_fit
from pipeline.topics import (
    BERTopicModel,
    NoTopics,
    assign_topics,
    build_topics,
    content_sample,
    fit_topics,
    is_stable,
)
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

__all__ = [
    "RunSummary",
    "load_export",
    "new_run_id",
    "run_enrichment",
    "utcnow",
    "validate_rows",
    "write_batch",
    "write_run",
]


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


def build_models(
    config: EnrichmentConfig, wh: Warehouse, topics: BERTopicModel | NoTopics | None = None
) -> Models:
    """Create the embedder (cached in the warehouse) and fit the zero-shot parts on it."""
    embedder = CachedEmbedder(build_embedder(config.embedder.name, **config.embedder.options), wh)
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    sentiment = sentiment_for_run(
        config.sentiment.name,
        config.sentiment.options,
        embedder,
        response_vector=config.response_vector,
        promoted=open_store(config, "sentiment", wh).promoted_path(),
    )
    tagger = tagger_for_run(config, taxonomy, embedder, wh)  # the promoted version when one exists
    return Models(
        embedder,
        sentiment,
        tagger,
        taxonomy,
        topics if topics is not None else NoTopics(),
        response_vector=config.response_vector,
    )


def topic_window(
    wh: Warehouse,
    config: EnrichmentConfig,
    new_texts: list[str] | None = None,
    new_times: pd.Series | list | None = None,
    new_languages: list[str] | None = None,
) -> pd.DataFrame:
    """The distinct answered texts of the rolling window: new ones first, then stored ones.

    Returns:
        Columns text, submitted_at, language (None when unknown) and tags (None for new texts);
        ``attrs["start"]`` holds the window's first instant (None when the window is empty), from
        which :func:`reassign_rows` reads the stored rows of the window.
    """
    span = timedelta(days=config.topics.window_days)
    n_new = len(new_texts or [])
    new = pd.DataFrame(
        {
            "text": list(new_texts or []),
            "submitted_at": _naive_utc(list(new_times) if new_times is not None and n_new else []),
            "language": list(new_languages) if new_languages is not None and n_new else [None] * n_new,
            "tags": [None] * n_new,
        }
    )
    new = _usable(new)
    t = config.tables
    stored_max = _naive(wh.max_value(t.enriched, "submitted_at")) if wh.table_exists(t.enriched) else None
    ends = [x for x in (new["submitted_at"].max() if len(new) else None, stored_max) if x is not None]
    if not ends:
        return _empty_window()
    # Only the stored rows of the window leave the database (a SQL range, not the whole table). The
    # window ends at the latest usable answer; when the latest stored rows are non-answers, that end
    # is earlier than the table's maximum, and the (rare) extra stretch is read in a second range.
    read_from: pd.Timestamp | None = max(ends) - span

    def gather(since: pd.Timestamp | None) -> pd.DataFrame:
        if stored_max is None:
            return new
        return _usable(pd.concat([new, _stored_window(wh, config, since)], ignore_index=True))

    window = gather(read_from)
    if window.empty and stored_max is not None:  # nothing usable lately: the latest usable is older
        read_from = None
        window = gather(None)
    if window.empty:
        return _empty_window()
    start = window["submitted_at"].max() - span
    if read_from is not None and start < read_from:
        window = gather(start)
    window = window[window["submitted_at"] >= start]
    window = window.drop_duplicates("text", keep="first").reset_index(drop=True)
    window.attrs["start"] = pd.Timestamp(start)
    return window


def _naive(value: Any) -> pd.Timestamp | None:
    """A timestamp as naive UTC (how the window compares times), or None."""
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _naive_utc(values: Any) -> np.ndarray:
    """Times as naive UTC datetime64 (the warehouse's convention); naive inputs are taken as UTC."""
    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True).dt.tz_localize(None).to_numpy()


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a non-empty text and a submission time."""
    return frame[frame["text"].astype(str).str.strip().ne("") & frame["submitted_at"].notna()]


def _empty_window() -> pd.DataFrame:
    window = pd.DataFrame(columns=["text", "submitted_at", "language", "tags"])
    window.attrs["start"] = None
    return window


def _stored_window(wh: Warehouse, config: EnrichmentConfig, start: pd.Timestamp | None) -> pd.DataFrame:
    """The stored answered rows submitted at or after ``start`` (all when None), as window columns."""
    t = config.tables
    have = set(wh.columns(t.enriched))
    cols = [c for c in ("text_redacted", "submitted_at", "is_non_answer", "language", "tags") if c in have]
    stored = wh.read_range(t.enriched, "submitted_at", start=start, columns=cols)
    stored = stored[~stored["is_non_answer"].astype(bool)]
    return pd.DataFrame(
        {
            "text": stored["text_redacted"].astype(str).to_numpy(),
            "submitted_at": _naive_utc(stored["submitted_at"]),
            "language": stored["language"].to_numpy() if "language" in stored else None,
            "tags": stored["tags"].to_numpy() if "tags" in stored else None,
        }
    )


def next_topic_id(wh: Warehouse, config: EnrichmentConfig, previous: BERTopicModel | None) -> int:
    """The first never-used topic id (ids of retired topics are not reused)."""
    ids = [int(t) for t in previous.topic_ids_] if previous is not None else []
    if wh.table_exists(config.tables.topics):
        ids += [int(t) for t in wh.read(config.tables.topics, ["topic_id"])["topic_id"]]
    return max(ids) + 1 if ids else 0


def window_languages(values: list | np.ndarray | pd.Series) -> list[str] | None:
    """Languages as topic models take them: "" for unknown ones, None when none is known."""
    langs = [None if v is None or pd.isna(v) else str(v) for v in values]
    return None if all(v is None for v in langs) else ["" if v is None else v for v in langs]


def window_vectors(config: EnrichmentConfig, models: Models, window: pd.DataFrame) -> np.ndarray:
    """The response vectors of the window's texts, from the embedding cache.

    Stored answers' vectors are in the cache (sentence means, written by the nightly run); an answer
    missing there is encoded whole (and cached).
    """
    return response_vectors(
        models.embedder, window["text"].astype(str).tolist(), None, config.response_vector
    )


def fit_window_topics(
    config: EnrichmentConfig,
    wh: Warehouse,
    models: Models,
    window: pd.DataFrame,
    now: datetime | None = None,
    emb: np.ndarray | None = None,
) -> BERTopicModel | NoTopics | None:
    """Fit the configured topic model on a window and store it, keeping the registry's topic ids.

    For ``topics.stable.v1`` the new topics are matched to the previous model's by the overlap of their
    texts in the window (:func:`pipeline.topic_registry.match_topics`): continuing topics keep their
    ids, splits and merges are written to the ``topic_history`` table, and each topic gets a suggested
    taxonomy tag from the tags of its texts (the tagger's, for texts not tagged yet).

    Args:
        config: The enrichment config.
        wh: The warehouse (previous model, registry, history).
        models: The run's models (embedder, tagger).
        window: The window from :func:`topic_window`.
        now: The refit's time (history records).
        emb: The window's vectors (:func:`window_vectors`); read from the cache when None.

    Returns:
        The fitted and promoted model, or None when the window has fewer than ``topics.min_docs`` texts
        or the gate refused the refit.
    """
    if len(window) < config.topics.min_docs:
        log.info(
            "topics: %d texts in the window, fewer than min_docs=%d; skipped",
            len(window),
            config.topics.min_docs,
        )
        return None
    now = now or utcnow()
    texts = window["text"].astype(str).tolist()
    languages = window_languages(window["language"].tolist())
    if emb is None:
        emb = window_vectors(config, models, window)
    options = {"languages": config.languages, **config.topics.options}
    previous = load_promoted_topics(config, wh, models.embedder.model_id)
    model = fit_topics(build_topics(config.topics.name, **options), texts, emb, languages, previous)
    tags = list(window["tags"])
    if is_stable(model):
        missing = [i for i, v in enumerate(tags) if not isinstance(v, list | tuple | np.ndarray)]
        if missing and models.tagger is not None:
            reads_texts = bool(getattr(models.tagger, "needs_texts", False))
            predicted, _ = models.tagger.predict(
                emb[missing], **({"texts": [texts[i] for i in missing]} if reads_texts else {})
            )
            for i, found in zip(missing, predicted, strict=True):
                tags[i] = list(found)
        model.suggest_tags([list(v) if v is not None else [] for v in tags], config.topics.tag_share)
        start = next_topic_id(wh, config, previous)
        if previous is not None and len(previous.topic_ids_):
            old = assign_topics(previous, emb, languages)
            match = match_topics(
                old,
                model.labels_,
                start,
                min_jaccard=config.topics.min_jaccard,
                old_ids=[int(t) for t in previous.topic_ids_],
            )
        else:
            match = first_match(list(model.topic_ids_), start)
        model.relabel(match.mapping)
    if not isinstance(model, NoTopics):
        decision = promote_fit(
            config,
            wh,
            model,
            previous,
            texts,
            emb,
            languages,
            tags,
            {
                **encoder_spec(config.embedder.name, config.embedder.options, models.embedder),
                "response_vector": config.response_vector,
            },
            window.attrs.get("start"),
        )
        if not decision.promoted:
            return None
    if is_stable(model):
        history = match.history(model.version, pd.Timestamp(now))
        if len(history):
            wh.upsert(config.tables.topic_history, history, key=TABLE_KEYS["topic_history"])
        log.info(
            "topics: refit %s: %s",
            model.version,
            pd.Series([e["event"] for e in match.events]).value_counts().to_dict(),
        )
    return model


def refit_topics(config: EnrichmentConfig, now: datetime | None = None, wait_s: float = 0.0) -> dict:
    """The weekly refit, without Prefect: fit on the stored window, keep ids, update the registry.

    The stored rows of the window are then re-assigned to the refitted topics from the same cached
    vectors (:func:`reassign_rows`; nothing is encoded), so that reports over the window agree
    with the registry. The refit holds the run lock (``wait_s``: how long to wait for a running run)
    and is recorded in the runs table.

    Returns:
        A summary: model_version, n_topics, window size, outlier share, events by kind,
        rows_reassigned (stored rows given the refitted topics), rows_topic_changed (those of them
        whose topic id changed), seconds.
    """
    t0 = time.perf_counter()
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_session(wh, config, "refit-topics", wait_s=wait_s) as run,
    ):
        models = build_models(config, wh)
        window = topic_window(wh, config)
        sample = fit_sample(window, config.topics.fit_sample)
        emb = window_vectors(config, models, sample) if len(sample) >= config.topics.min_docs else None
        with wh.transaction():  # model, history, registry and re-assigned rows: all or nothing
            model = fit_window_topics(config, wh, models, sample, now, emb=emb)
            if model is None or isinstance(model, NoTopics):
                run.succeed(wh, config)
                return {"model_version": None, "n_topics": 0, "window": len(window), "refit": False}
            models.topics = model
            reassigned = reassign_rows(wh, config, models, window.attrs.get("start"))
            write_topics(wh, config, model)
        run.summary.versions = {**models.versions(), "topic_model_version": model.version}
        run.succeed(wh, config)
        events: dict[str, int] = {}
        if wh.table_exists(config.tables.topic_history):
            hist = wh.read(config.tables.topic_history, where={"model_version": [model.version]})
            events = {str(k): int(v) for k, v in hist["event"].value_counts().items()}
    return {
        "model_version": model.version,
        "n_topics": len(model.topic_ids_),
        "window": len(window),
        "outlier_share": round(float(model.fit_outlier_share_), 4),
        "events": events,
        "refit": True,
        **reassigned,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def write_batch(
    wh: Warehouse,
    config: EnrichmentConfig,
    batch: EnrichedBatch | None,
    quarantined: pd.DataFrame | None,
    run_id: str,
) -> None:
    """Write one batch in ONE transaction: each response ends enriched (its row, tags and sentences)
    or quarantined, never half of it, and never both.

    A response's earlier tags and sentences are replaced, not appended; an enriched response that is
    now quarantined leaves the enriched tables, and a quarantined one that is now enriched leaves the
    quarantine. A process killed before the commit leaves the warehouse as it was, so the rows stay
    pending and the next run does them again.
    """
    t = config.tables
    enriched_ids = batch.enriched["response_id"].astype(str).tolist() if batch is not None else []
    q = quarantined if quarantined is not None and len(quarantined) else None
    quarantined_ids = q["response_id"].astype(str).tolist() if q is not None else []
    ids = enriched_ids + quarantined_ids
    if not ids:
        return
    with wh.transaction():
        for table in (t.tags, t.sentences):
            wh.delete(table, {"response_id": ids})
        if quarantined_ids:
            wh.delete(t.enriched, {"response_id": quarantined_ids})
            rows = q.assign(run_id=run_id, quarantined_at=pd.Timestamp(utcnow()).as_unit("us"))
            wh.upsert(t.quarantine, rows, key=TABLE_KEYS["quarantine"])
        if batch is not None and enriched_ids:
            wh.delete(t.quarantine, {"response_id": enriched_ids})
            wh.upsert(t.enriched, batch.enriched, key=TABLE_KEYS["feedback_enriched"])
            if len(batch.tags):
                wh.upsert(t.tags, batch.tags, key=TABLE_KEYS["feedback_tags"])
            if len(batch.sentences):
                wh.upsert(t.sentences, batch.sentences, key=TABLE_KEYS["feedback_sentences"])
    fault_point("write_batch")


def remove_deleted(wh: Warehouse, config: EnrichmentConfig) -> int:
    """Erase what the pipeline keeps of rows deleted from the source, and of answers older than
    ``retention_days`` (:mod:`pipeline.erasure`: every table, quotes and cache, one transaction), so that
    source = enriched + quarantined keeps holding. Returns how many responses were removed."""
    from pipeline.erasure import expired_ids, forget_ids

    removed = 0
    deleted = removed_ids(wh, config)
    if deleted:
        forget_ids(wh, config, deleted, reason="deleted_from_source", who="pipeline", delete_source=False)
        log.info("%d responses deleted from the source: erased from the pipeline's tables", len(deleted))
        removed += len(deleted)
    expired = expired_ids(wh, config)
    if expired:
        forget_ids(wh, config, expired, reason="retention", who="pipeline")
        log.info("%d responses older than retention_days=%s erased", len(expired), config.retention_days)
        removed += len(expired)
    return removed


def topic_spans(wh: Warehouse, config: EnrichmentConfig) -> pd.DataFrame:
    """First and last ``submitted_at`` of each topic among the stored answers (an aggregate in SQL)."""
    t = config.tables.enriched
    if not wh.table_exists(t) or not {"topic_id", "submitted_at"} <= set(wh.columns(t)):
        return pd.DataFrame(columns=["topic_id", "submitted_at"])
    q = wh._quote
    rows = wh._query(
        f"SELECT {q('topic_id')} AS topic_id, MIN({q('submitted_at')}) AS first_at, "
        f"MAX({q('submitted_at')}) AS last_at FROM {wh._qualified(t)} "
        f"WHERE {q('topic_id')} >= 0 GROUP BY {q('topic_id')}",
        None,
        {"topic_id": "bigint", "first_at": "timestamp", "last_at": "timestamp"},
    )
    return pd.DataFrame(
        {
            "topic_id": pd.concat([rows["topic_id"], rows["topic_id"]], ignore_index=True),
            "submitted_at": pd.concat([rows["first_at"], rows["last_at"]], ignore_index=True),
        }
    )


def write_topics(
    wh: Warehouse,
    config: EnrichmentConfig,
    topics: BERTopicModel | NoTopics,
    seen: pd.DataFrame | None = None,
) -> None:
    """Upsert the topic registry: label, keywords, quotes, suggested tag, size, first/last seen, version.

    Topics of the stored registry that the current ``topics.stable.v1`` model no longer has are kept,
    with status ``retired`` (their ids are never reused). ``seen`` (topic_id, submitted_at) gives the
    first/last seen times; None reads them from the stored answers (:func:`topic_spans`), which makes
    the write a function of what is stored: a rerun after a kill writes the same registry.
    """
    table = topics.topic_table()
    if table.empty:
        return
    if seen is None:
        seen = topic_spans(wh, config)
    t = config.tables
    prior = wh.read(t.topics) if wh.table_exists(t.topics) else pd.DataFrame(columns=["topic_id"])
    by_id = prior.set_index("topic_id") if len(prior) else None

    def prior_value(topic_id: int, column: str) -> object:
        if by_id is None or column not in by_id.columns or topic_id not in by_id.index:
            return None
        value = by_id.at[topic_id, column]
        return (
            None if value is None or (not isinstance(value, list | np.ndarray) and pd.isna(value)) else value
        )

    span = seen[seen["topic_id"] >= 0].groupby("topic_id")["submitted_at"].agg(["min", "max"])
    table = table.assign(
        first_seen=[
            prior_value(i, "first_seen") if prior_value(i, "first_seen") is not None else span["min"].get(i)
            for i in table["topic_id"]
        ],
        last_seen=[
            span["max"].get(i) if span["max"].get(i) is not None else prior_value(i, "last_seen")
            for i in table["topic_id"]
        ],
        model_version=topics.version,
        status="active",
    )
    if is_stable(topics) and len(prior) and "status" in prior.columns:
        gone = prior[~prior["topic_id"].isin(table["topic_id"]) & prior["status"].ne("retired")]
        if len(gone):
            table = pd.concat([table, gone.assign(status="retired")], ignore_index=True)
    table["first_seen"] = pd.to_datetime(table["first_seen"]).astype("datetime64[us]")
    table["last_seen"] = pd.to_datetime(table["last_seen"]).astype("datetime64[us]")
    wh.upsert(t.topics, table, key=TABLE_KEYS["topics"])


def update_alerts(wh: Warehouse, config: EnrichmentConfig, now: datetime | None = None) -> int:
    """Compute emerging-theme alerts over ``feedback_enriched`` and upsert them into ``alerts``.

    Only the rows the rules look at are read: ``submitted_at`` within the current period and the
    baseline periods before it (:attr:`pipeline.alerts.AlertRules.lookback`), filtered in the
    database, so the nightly cost does not grow with the table's history.

    Args:
        wh: The warehouse.
        config: The enrichment config (``alerts`` section, table names).
        now: End of the current period (default: the latest stored ``submitted_at``).

    Returns:
        The number of alerts written (re-running the same night replaces them).
    """
    t = config.tables
    if not config.alerts.enabled or not wh.table_exists(t.enriched):
        return 0
    from pipeline.alerts import AlertRules, alert_frame, compute_alerts

    have = set(wh.columns(t.enriched))
    cols = [
        c
        for c in ("response_id", "submitted_at", "topic_id", "topic_label", "is_non_answer", "text_redacted")
        if c in have
    ]
    rules = AlertRules(**config.alerts.model_dump(exclude={"enabled"}))
    kinds = ("topic",) if "topic_id" in have else ()
    kinds += ("tag",) if wh.table_exists(t.tags) else ()
    # The period's end must be fixed before filtering (compute_alerts would take the latest row read).
    end = pd.Timestamp(now) if now is not None else wh.max_value(t.enriched, "submitted_at")
    if end is None:
        alerts = alert_frame([])
    else:
        rows = _with_tag_lists(
            wh, config, wh.read_range(t.enriched, "submitted_at", end - rules.lookback, end, cols)
        )
        alerts = compute_alerts(rows, now=end, rules=rules, kinds=kinds, created_at=utcnow())
    if alerts.empty and wh.table_exists(t.alerts):
        return 0
    # A quiet night still creates the (empty) table, so that readers can always query it.
    return wh.upsert(t.alerts, alerts, key=TABLE_KEYS["alerts"])


def _with_tag_lists(wh: Warehouse, config: EnrichmentConfig, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each response's tags as a list, read from the tags table (the themes' truth)."""
    t = config.tables
    if not wh.table_exists(t.tags) or "response_id" not in rows:
        return rows
    ids = rows["response_id"].tolist()
    long = wh.read(t.tags, ["response_id", "tag"], where={"response_id": ids}) if ids else None
    lists = long.groupby("response_id", sort=False)["tag"].agg(list) if long is not None else {}
    tags = [lists.get(r, []) if len(lists) else [] for r in ids]
    return rows.assign(tags=pd.Series(tags, index=rows.index, dtype=object))


def prepare_stage(validated: Validated, config: EnrichmentConfig, summary: RunSummary) -> pd.DataFrame:
    """Stage ``prepare`` of one page: normalise, detect languages, redact, split sentences (no I/O)."""
    t0 = time.perf_counter()
    valid = validated.valid
    prepared = prepare_batch(valid, prepare_config_of(config)) if len(valid) else pd.DataFrame()
    _add_time(summary, "prepare", t0)
    fault_point("prepare")
    return prepared


def _add_time(summary: RunSummary, stage: str, t0: float) -> None:
    summary.timings[stage] = summary.timings.get(stage, 0.0) + time.perf_counter() - t0


def load_models_stage(wh: Warehouse, config: EnrichmentConfig, summary: RunSummary) -> Models:
    """Build the run's models once: the embedder (cached in the warehouse), sentiment and tagger (the
    promoted versions when there are), and the promoted topic model (none on a first run: answers then
    get their topics when :func:`topics_stage` fits one)."""
    t0 = time.perf_counter()
    models = build_models(config, wh)
    if config.topics.name != "topics.none.v1":
        models.topics = load_promoted_topics(config, wh, models.embedder.model_id) or NoTopics()
    _add_time(summary, "load_models", t0)
    summary.versions = models.versions()
    return models


def embed_stage(
    config: EnrichmentConfig,
    models: Models,
    prepared: pd.DataFrame,
    summary: RunSummary,
    progress: Progress | None = None,
) -> None:
    """Stage ``embed`` of one page: encode every new distinct sentence once and build the answers'
    vectors from them (all cached), so that scoring and topics read everything from the cache."""
    if not len(prepared):
        return
    t0 = time.perf_counter()
    answered = ~prepared["is_non_answer"].to_numpy(dtype=bool)
    texts = prepared.loc[answered, "text_redacted"].tolist()
    sents = prepared.loc[answered, "sentences"].tolist()
    kwargs = {"progress": progress or log_progress("embedding")}
    models.embedder.embed(list(dict.fromkeys(s for ss in sents for s in ss)), **kwargs)
    summary.embedded_new += models.embedder.misses_
    response_vectors(models.embedder, texts, sents, config.response_vector, **kwargs)
    if config.response_vector == "whole":
        summary.embedded_new += models.embedder.misses_
    _add_time(summary, "embed", t0)
    fault_point("embed")


def topics_due(config: EnrichmentConfig, wh: Warehouse, models: Models, now: datetime) -> bool:
    """Whether the run fits topics: no model yet, or the latest fit is ``topics.refit_after_days`` old."""
    if config.topics.name == "topics.none.v1":
        return False
    last = None if isinstance(models.topics, NoTopics) else last_fit_at(config, wh)
    return last is None or now - last >= timedelta(days=config.topics.refit_after_days)


def fit_sample(window: pd.DataFrame, cap: int) -> pd.DataFrame:
    """At most ``cap`` texts of the window, chosen by content (the same texts whatever their order)."""
    if len(window) <= cap:
        return window
    keep = np.sort(content_sample(window["text"].astype(str).tolist(), cap))
    sample = window.iloc[keep].reset_index(drop=True)
    sample.attrs["start"] = window.attrs.get("start")
    return sample


def topics_stage(
    wh: Warehouse, config: EnrichmentConfig, models: Models, summary: RunSummary, now: datetime | None = None
) -> Models:
    """Stage ``topics``, after every page is written: when due (no model yet, or the latest fit is
    old), fit the topic model on a capped sample of the stored window (vectors from the cache), promote
    it through its gate and give the refitted topics to the stored answers of the window and to those
    no model has assigned yet, page by page (:func:`reassign_rows`); then write the topic registry."""
    t0 = time.perf_counter()
    now = now or utcnow()
    if topics_due(config, wh, models, now):
        window = topic_window(wh, config)
        sample = fit_sample(window, config.topics.fit_sample)
        emb = window_vectors(config, models, sample) if len(sample) >= config.topics.min_docs else None
        # The model, its history and the stored rows' new topics commit together: a kill in between would
        # leave stored rows on topics of a model that the next run loads as if they matched.
        with wh.transaction():
            model = fit_window_topics(config, wh, models, sample, now, emb=emb)
            if model is not None:
                models.topics = model
                reassign_rows(wh, config, models, window.attrs.get("start"))
        summary.versions = models.versions()
    _add_time(summary, "topics_fit", t0)
    fault_point("topics_fit")
    t0 = time.perf_counter()
    write_topics(wh, config, models.topics)
    _add_time(summary, "write_topics", t0)
    fault_point("write_topics")
    return models


def reassign_rows(
    wh: Warehouse, config: EnrichmentConfig, models: Models, start: pd.Timestamp | None, page_size: int = 0
) -> dict[str, int]:
    """Give the promoted topic model's topics to the stored answers of the window (``start`` on) and to
    every stored answer no topic model has assigned yet, page by page (vectors from the cache: nothing is
    encoded). Rows are upserted whole by ``response_id``, so the row count does not change.

    Returns:
        ``{"rows_reassigned": rows written, "rows_topic_changed": those whose topic id changed}``.
    """
    model, table = models.topics, config.tables.enriched
    counts = {"rows_reassigned": 0, "rows_topic_changed": 0}
    if isinstance(model, NoTopics) or not wh.table_exists(table):
        return counts
    types = wh._column_types(table)
    if not {"response_id", "submitted_at", "text_redacted", "topic_id", "topic_model_version"} <= set(types):
        return counts
    q = wh._quote
    key = wh._key_expr(q("response_id"), types["response_id"])
    unassigned = f"({q('topic_model_version')} IS NULL OR {q('topic_model_version')} = 'none')"
    since = f"{q('submitted_at')} >= :start OR " if start is not None else ""
    answered = f"{q('is_non_answer')} = :no AND " if "is_non_answer" in types else ""
    size = page_size or config.batch_size
    after = None
    while True:
        params: dict[str, Any] = {"no": False}
        if start is not None:
            params["start"] = pd.Timestamp(start).to_pydatetime()
        page_filter = ""
        if after is not None:
            page_filter, params["after"] = f" AND {key} > :after", after
        rows = wh._query(
            f"SELECT * FROM {wh._qualified(table)} WHERE {answered}({since}{unassigned}){page_filter} "
            f"ORDER BY {key} LIMIT {int(size)}",
            params,
            types,
        )
        if rows.empty:
            break
        emb = response_vectors(
            models.embedder, rows["text_redacted"].astype(str).tolist(), None, config.response_vector
        )
        langs = window_languages(rows["language"].tolist()) if "language" in rows else None
        ids = assign_topics(model, emb, langs).astype(int)
        old = pd.to_numeric(rows["topic_id"], errors="coerce").fillna(-1).astype(int).to_numpy()
        out = rows.assign(topic_id=ids, topic_label=model.labels(ids), topic_model_version=model.version)
        wh.upsert(table, out, key=TABLE_KEYS["feedback_enriched"])
        counts["rows_reassigned"] += len(out)
        counts["rows_topic_changed"] += int((old != ids).sum())
        if len(rows) < size:
            break
        after = str(rows["response_id"].iloc[-1])
    log.info("topics: %s, to %s", counts, model.version)
    return counts


def score_and_write_stage(
    wh: Warehouse,
    config: EnrichmentConfig,
    models: Models,
    validated: Validated,
    prepared: pd.DataFrame,
    segments: list[str],
    summary: RunSummary,
) -> RunSummary:
    """Stages ``score`` and ``write`` of one page: score the valid rows (sentiment, tags, topics) and
    write them with the page's quarantined rows in ONE transaction (:func:`write_batch`). A model failure
    quarantines the page's rows (``enrichment_error``) and the run goes on."""
    valid, quarantined = validated.valid, validated.quarantined
    reasons: list[str] = list(quarantined["reason"].astype(str)) if len(quarantined) else []
    batch = None
    if len(valid):
        t0 = time.perf_counter()
        try:
            batch = enrich_batch(valid, prepared, models, segments, summary.run_id, utcnow())
            batch.enriched["source_hash"] = valid[ROW_HASH].to_numpy() if ROW_HASH in valid else None
        except Exception as exc:  # a model failure must not sink the night: quarantine the batch
            log.exception("enrichment failed for %d rows; quarantined", len(valid))
            failed = quarantine_frame(
                valid.drop(columns=[ROW_HASH], errors="ignore"),
                "enrichment_error",
                f"{type(exc).__name__}: {exc}"[:500],
            )
            if ROW_HASH in valid:
                failed["source_hash"] = valid[ROW_HASH].to_numpy()
            quarantined = pd.concat([quarantined, failed])
            reasons += ["enrichment_error"] * len(failed)
            batch = None
        _add_time(summary, "enrich", t0)
    t0 = time.perf_counter()
    write_batch(wh, config, batch, quarantined, summary.run_id)
    _add_time(summary, "write", t0)
    summary.rows_enriched += len(batch.enriched) if batch is not None else 0
    summary.rows_quarantined += len(quarantined)
    for reason in reasons:
        summary.quarantine_reasons[reason] = summary.quarantine_reasons.get(reason, 0) + 1
    return summary


def extract_stage(wh: Warehouse, config: EnrichmentConfig, summary: RunSummary) -> None:
    """Stage ``extract``, before the pages: erase what left the source (or the retention window)."""
    summary.rows_removed = remove_deleted(wh, config)


def pending_pages(wh: Warehouse, config: EnrichmentConfig, summary: RunSummary) -> Iterator[pd.DataFrame]:
    """The pending rows, ``batch_size`` at a time in key order (:func:`pipeline.pending.iter_pending`):
    the next page is read after the previous one is written, so memory stays bounded by the page."""
    for page in iter_pending(wh, config, page_size=config.batch_size):
        summary.rows_in += len(page)
        summary.watermark = new_watermark(page, summary.watermark)
        log.info("extract: %d pending rows (%d so far)", len(page), summary.rows_in)
        fault_point("extract")
        yield page


def _direct(fn: Callable[..., Any], **_options: Any) -> Callable[..., Any]:
    return fn


def run_steps(
    wh: Warehouse,
    run: RunSession,
    config: EnrichmentConfig,
    progress: Progress | None = None,
    as_task: Callable[..., Callable[..., Any]] = _direct,
    distribute: Callable[..., None] | None = None,
) -> RunSummary:
    """The stages of one enrichment run, in order: THE run path, with or without Prefect.

    ``as_task(fn, retries=n)`` wraps each stage: the identity without Prefect, a Prefect task in the
    nightly flow (so each stage's timing, state and retries are Prefect's; retries only on the stages
    that only read or write the warehouse idempotently). Stages: extract (erasures), load models, then
    for each page of ``batch_size`` pending rows: validate, prepare, embed, score + write (one
    transaction); then topics (fit when due, re-assign, registry), record, alerts. Memory is bounded by
    the page, whatever the number of pending rows; a run makes four task runs per page.
    """
    summary = run.summary
    summary.rows_in = 0
    as_task(extract_stage, retries=2)(wh, config, summary)
    models = as_task(load_models_stage)(wh, config, summary)
    if distribute is not None:  # the pages on a Dask cluster (executor.dask: pipeline.distributed)
        distribute(wh, config, models, summary, pending_pages(wh, config, summary))
    for page in pending_pages(wh, config, summary) if distribute is None else ():
        validated, segments = as_task(validate_rows)(page, config)
        prepared = as_task(prepare_stage)(validated, config, summary)
        as_task(embed_stage)(config, models, prepared, summary, progress)
        as_task(score_and_write_stage)(wh, config, models, validated, prepared, segments, summary)
    as_task(topics_stage)(wh, config, models, summary)
    as_task(finish_run, retries=2)(wh, config, summary, run.flow, run.started_at)
    summary.alerts = as_task(alerts_after_run)(wh, config)
    return summary


def finish_run(
    wh: Warehouse, config: EnrichmentConfig, summary: RunSummary, flow: str, started: datetime
) -> None:
    """Check the run's row accounting and record it as ``success``."""
    summary.check()
    summary.status = SUCCESS
    write_run(wh, config, summary, flow, started)
    fault_point("record_run")


def alerts_after_run(wh: Warehouse, config: EnrichmentConfig) -> int:
    """The alerts over what is stored; a failure is logged and does not undo the recorded run."""
    try:
        n = update_alerts(wh, config)
    except Exception:
        log.exception("alerts: computation failed; the run itself succeeded")
        return 0
    fault_point("alerts")
    return n


def run_enrichment(
    config: EnrichmentConfig,
    full: bool = False,
    progress: Progress | None = None,
    flow: str = "enrich",
    wait_s: float = 0.0,
) -> RunSummary:
    """One enrichment run without Prefect: lock, extract, validate, enrich, write, record, alerts.

    Args:
        config: The config.
        full: Kept for the command line's ``--full``: every run already checks every row by content.
        progress: Progress callback for the embedding step.
        flow: The name recorded in the runs table.
        wait_s: How long to wait for a running run (0: refuse at once).

    Raises:
        RunLockHeld: When another run holds the warehouse.
    """
    del full  # every row is checked by content; nothing hides behind a watermark
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_session(wh, config, flow, wait_s=wait_s) as run,
    ):
        return run_steps(wh, run, config, progress)


def log_progress(label: str, every: float = 0.1) -> Progress:
    """A progress callback that logs every ``every`` share of the work."""
    state = {"next": every}

    def callback(done: int, total: int) -> None:
        if total and (done / total >= state["next"] or done == total):
            log.info("%s: %d/%d (%.0f%%)", label, done, total, 100 * done / total)
            state["next"] = done / total + every

    return callback


def build_report(config: EnrichmentConfig, out_dir: str | Path | None = None) -> tuple[object, Path]:
    """Read the enriched tables, run the root-cause analysis and write the HTML report.

    Returns:
        The analysis summary and the path of the HTML report.
    """
    from pipeline.analysis import summarise
    from pipeline.check import open_for_reading, require_consistent
    from pipeline.report import write_report

    t = config.tables
    with open_for_reading(config.warehouse) as wh:
        # A report over a warehouse with lost or half-written rows would show wrong numbers as if right.
        require_consistent(wh, config)
        enriched = wh.read(t.enriched) if wh.table_exists(t.enriched) else pd.DataFrame()
        tags = wh.read(t.tags) if wh.table_exists(t.tags) else None
        topics = wh.read(t.topics) if wh.table_exists(t.topics) else None
        lineage: dict[str, str] = {"warehouse": wh.describe()}
        if wh.table_exists(t.runs):
            runs = wh.read(t.runs).sort_values("started_at")
            if len(runs):
                last = runs.iloc[-1]
                for key in (
                    "run_id",
                    "embedder_id",
                    "sentiment_model_version",
                    "sentiment_source",
                    "tagger_version",
                    "taxonomy_version",
                    "topic_model_version",
                ):
                    lineage[key] = str(last.get(key))
    segments = config.source.segments
    summary = summarise(enriched, tags=tags, topics=topics, segments=segments)
    for i, note in enumerate(summary.notes):  # shown with the lineage in the HTML report too
        lineage[f"note {i + 1}"] = note
    path = write_report(summary, Path(out_dir or config.report_dir), lineage=lineage)
    return summary, path
