"""The steps of one enrichment run against a warehouse, as plain functions.

``flows/nightly_enrichment.py`` wires these into Prefect tasks; :func:`run_enrichment` runs the same
steps without Prefect (tests, notebooks). Rows in = rows enriched + rows quarantined, always.

Nothing is lost: the rows to work on are decided by their content (:mod:`pipeline.ingest.pending`), a batch's
enriched rows, tags, sentences and quarantine records commit in one transaction (:func:`write_batch`),
and every run holds the run lock and is recorded from start to end (:mod:`pipeline.runs`). Named fault
points (:mod:`pipeline.faults`) let the tests kill a real run after any step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.dashboard import run_hooks as dashboard
from pipeline.embed import CachedEmbedder, build_embedder
from pipeline.embed.base import Progress, release_model
from pipeline.embed.response import response_vectors
from pipeline.enrich import Models, enrich_batch, prepare_batch
from pipeline.faults import fault_point
from pipeline.ingest.load import new_watermark, validate_rows
from pipeline.ingest.pending import ROW_HASH, iter_pending
from pipeline.ingest.source import (
    Validated,
    quarantine_frame,
)
from pipeline.model_store import open_store
from pipeline.prepare import prepare_config_of, release_prepare_models
from pipeline.runs import SUCCESS, RunSession, RunSummary, new_run_id, run_session, write_run
from pipeline.schema import TABLE_KEYS
from pipeline.sentiment import sentiment_for_run
from pipeline.tagging.lifecycle import tagger_for_run
from pipeline.tagging.taxonomy import load_taxonomy
from pipeline.topics import (
    BERTopicModel,
    NoTopics,
    assign_topics,
)
from pipeline.topics.refit import fit_window_topics, window_languages, window_vectors
from pipeline.topics.versions import LazyTopics, last_fit_at, load_promoted_topics
from pipeline.topics.window import window_sample
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from pipeline.writeback import remove_deleted, update_alerts, write_batch, write_topics

log = logging.getLogger(__name__)

__all__ = [
    "RunSummary",
    "new_run_id",
    "run_enrichment",
    "utcnow",
    "write_run",
]


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
        sample = window_sample(wh, config, config.topics.fit_sample)
        emb = window_vectors(config, models, sample) if len(sample) >= config.topics.min_docs else None
        with wh.transaction():  # model, history, registry and re-assigned rows: all or nothing
            model = fit_window_topics(config, wh, models, sample, now, emb=emb)
            if model is None or isinstance(model, NoTopics):
                run.succeed(wh, config)
                return {
                    "model_version": None,
                    "n_topics": 0,
                    "window": sample.attrs.get("window_size", len(sample)),
                    "refit": False,
                }
            models.topics = model
            reassigned = reassign_rows(wh, config, models, sample.attrs.get("start"))
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
        "window": sample.attrs.get("window_size", len(sample)),
        "outlier_share": round(float(model.fit_outlier_share_), 4),
        "events": events,
        "refit": True,
        **reassigned,
        "seconds": round(time.perf_counter() - t0, 2),
    }


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
        models.topics = load_promoted_topics(config, wh, models.embedder.model_id, lazy=True) or NoTopics()
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
        sample = window_sample(wh, config, config.topics.fit_sample)
        emb = window_vectors(config, models, sample) if len(sample) >= config.topics.min_docs else None
        # The model, its history and the stored rows' new topics commit together: a kill in between would
        # leave stored rows on topics of a model that the next run loads as if they matched.
        with wh.transaction():
            model = fit_window_topics(config, wh, models, sample, now, emb=emb)
            if model is not None:
                models.topics = model
                reassign_rows(wh, config, models, sample.attrs.get("start"))
        summary.versions = models.versions()
    _add_time(summary, "topics_fit", t0)
    fault_point("topics_fit")
    t0 = time.perf_counter()
    unused = isinstance(models.topics, LazyTopics) and not models.topics.loaded
    if not (unused and summary.rows_removed == 0 and wh.table_exists(config.tables.topics)):
        # (a run that assigned no topic and erased nothing leaves the registry as it is)
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
    """The pending rows, ``batch_size`` at a time in key order (:func:`pipeline.ingest.pending.iter_pending`):
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
    dashboard_edits = dashboard.before_run(wh, config)  # the dashboard's edits, never overwritten
    as_task(extract_stage, retries=2)(wh, config, summary)
    models = as_task(load_models_stage)(wh, config, summary)
    if distribute is not None:  # the pages on a Dask cluster (executor.dask: pipeline.distributed)
        distribute(wh, config, models, summary, pending_pages(wh, config, summary))
    for page in pending_pages(wh, config, summary) if distribute is None else ():
        validated, segments = as_task(validate_rows)(page, config)
        prepared = as_task(prepare_stage)(validated, config, summary)
        as_task(embed_stage)(config, models, prepared, summary, progress)
        as_task(score_and_write_stage)(wh, config, models, validated, prepared, segments, summary)
    release_model(models.embedder)  # the topic stage reads cached vectors; the encoder reloads if needed
    release_prepare_models()  # the topic stage needs the memory more than the next run needs them warm
    with wh.small_cache():  # the pages filled DuckDB's cache with blocks the topic stage reads once
        as_task(topics_stage)(wh, config, models, summary)
    as_task(finish_run, retries=2)(wh, config, summary, run.flow, run.started_at)
    summary.alerts = as_task(alerts_after_run)(wh, config)
    dashboard.after_run(wh, config, dashboard_edits)  # a read-only snapshot: an open dashboard never blocks
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
        from pipeline.analysis.followups import add_candidates

        log.info("followups: %d new candidate(s)", add_candidates(wh, config=config))
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
    """The root-cause report (:func:`pipeline.report.build_report`): the data and the HTML path."""
    from pipeline.report import build_report as build

    return build(config, out_dir)
