"""The steps of one enrichment run against a warehouse, as plain functions.

``flows/nightly_enrichment.py`` wires these into Prefect tasks; :func:`run_enrichment` runs the same
steps without Prefect (tests, notebooks). Rows in = rows enriched + rows quarantined, always.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.embed import CachedEmbedder, build_embedder
from pipeline.embed.base import Progress
from pipeline.embed.response import response_vectors
from pipeline.enrich import EnrichedBatch, Models, enrich_batch, prepare_batch
from pipeline.prepare import PrepareConfig
from pipeline.schema import TABLE_KEYS
from pipeline.sentiment import build_sentiment
from pipeline.source import (
    Validated,
    conform,
    dedupe,
    quarantine_frame,
    read_export,
    segment_columns,
    validate,
)
from pipeline.tagging import build_tagger
from pipeline.taxonomy import load_taxonomy
from pipeline.topics import BERTopicModel, NoTopics, build_topics
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Naive UTC now, to the microsecond (the warehouse stores naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """A sortable, unique run id."""
    return f"run-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LoadReport:
    """What loading an export into the source table did."""

    path: str
    rows_read: int
    rows_loaded: int
    exact_duplicates: int
    conflicting_duplicates: int


def load_export(path: str | Path, wh: Warehouse, config: EnrichmentConfig) -> LoadReport:
    """Upsert a CSV/Parquet survey export into the source table, keyed by response_id.

    Repeated response_ids collapse to their last row (an upsert by key would do the same); both kinds
    of repeat are counted in the report, none is an error.
    """
    raw = read_export(path)
    df = conform(raw, config.source)
    df, n_exact, n_conflict = dedupe(df)
    written = wh.upsert(config.tables.source, df, key=["response_id"])
    if n_exact or n_conflict:
        log.info(
            "export %s: %d exact and %d conflicting repeated response_ids collapsed",
            path,
            n_exact,
            n_conflict,
        )
    return LoadReport(str(path), len(raw), written, n_exact, n_conflict)


def read_watermark(wh: Warehouse, config: EnrichmentConfig) -> tuple[datetime, str] | None:
    """The (submitted_at, response_id) watermark of the last successful run, if any."""
    runs = config.tables.runs
    if not wh.table_exists(runs):
        return None
    df = wh.read(runs, ["watermark_submitted_at", "watermark_response_id", "status"])
    df = df[(df["status"] == "success") & df["watermark_submitted_at"].notna()]
    if df.empty:
        return None
    top = df.sort_values(["watermark_submitted_at", "watermark_response_id"]).iloc[-1]
    return pd.Timestamp(top["watermark_submitted_at"]).to_pydatetime(), str(top["watermark_response_id"])


def extract(wh: Warehouse, config: EnrichmentConfig, full: bool = False) -> tuple[pd.DataFrame, tuple | None]:
    """New source rows: beyond the watermark (all when ``full``) and neither enriched nor quarantined."""
    watermark = None if full else read_watermark(wh, config)
    t = config.tables
    pending = wh.read_pending(t.source, watermark, processed=[t.enriched, t.quarantine])
    log.info("extract: %d new rows (watermark %s)", len(pending), watermark)
    return pending, watermark


def new_watermark(pending: pd.DataFrame, previous: tuple | None) -> tuple | None:
    """The largest (submitted_at, response_id) among the extracted rows, or the previous watermark."""
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


def validate_rows(pending: pd.DataFrame, config: EnrichmentConfig) -> tuple[Validated, list[str]]:
    """Conform and validate extracted rows; returns the split and the segment columns."""
    if pending.empty:
        empty = pd.DataFrame(columns=["response_id", "reason", "detail", "raw"])
        return Validated(pending, empty), []
    df = conform(pending, config.source)
    return validate(df), segment_columns(df, config.source)


def prepare_config(config: EnrichmentConfig) -> PrepareConfig:
    """The prepare stage's config from the enrichment config."""
    return PrepareConfig(
        languages=tuple(config.languages),
        min_language_confidence=config.prepare.min_language_confidence,
        max_chars=config.prepare.max_chars,
    )


def build_models(
    config: EnrichmentConfig, wh: Warehouse, topics: BERTopicModel | NoTopics | None = None
) -> Models:
    """Create the embedder (cached in the warehouse) and fit the zero-shot parts on it."""
    embedder = CachedEmbedder(build_embedder(config.embedder.name, **config.embedder.options), wh)
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    sentiment = build_sentiment(config.sentiment.name, **config.sentiment.options).fit(embedder)
    tagger = build_tagger(config.tagger.name, taxonomy, **config.tagger.options).fit(embedder)
    return Models(
        embedder,
        sentiment,
        tagger,
        taxonomy,
        topics if topics is not None else NoTopics(),
        response_vector=config.response_vector,
    )


TOPIC_MODELS_TABLE = "topic_models"


def load_topics(wh: Warehouse, embedder_id: str) -> BERTopicModel | None:
    """The latest topic model fitted on this embedder's vectors, stored in the warehouse."""
    if not wh.table_exists(TOPIC_MODELS_TABLE):
        return None
    rows = wh.read(TOPIC_MODELS_TABLE, where={"embedder_id": [embedder_id]})
    if rows.empty:
        return None
    latest = rows.sort_values("fitted_at").iloc[-1].to_dict()
    return BERTopicModel.from_record(latest)


def save_topics(wh: Warehouse, model: BERTopicModel, embedder_id: str) -> None:
    """Store a fitted topic model in the warehouse (table ``topic_models``)."""
    record = pd.DataFrame([model.to_record(embedder_id)])
    record["fitted_at"] = pd.to_datetime(record["fitted_at"]).astype("datetime64[us]")
    wh.upsert(TOPIC_MODELS_TABLE, record, key=["model_version"])


def load_or_fit_topics(
    config: EnrichmentConfig,
    wh: Warehouse,
    models: Models,
    new_texts: list[str],
    new_times: pd.Series,
    now: datetime | None = None,
) -> BERTopicModel | NoTopics:
    """Load the stored topic model, or (re)fit it on the window when none exists or it is due.

    The window is every answered response submitted in the last ``topics.window_days`` days, stored or
    new; its embeddings come from the cache, so nothing is encoded again. The fitted model is kept in
    the warehouse, so it travels with the data (and any machine can run the next night).
    """
    if config.topics.name == "topics.none.v1":
        return NoTopics()
    now = now or utcnow()
    stored_model = load_topics(wh, models.embedder.model_id)
    if stored_model is not None and now - stored_model.fitted_at_ < timedelta(
        days=config.topics.refit_after_days
    ):
        return stored_model
    texts, times = list(new_texts), list(pd.to_datetime(new_times))
    t = config.tables
    if wh.table_exists(t.enriched):
        stored = wh.read(t.enriched, ["text_redacted", "submitted_at", "is_non_answer"])
        stored = stored[~stored["is_non_answer"].astype(bool)]
        texts += stored["text_redacted"].tolist()
        times += list(pd.to_datetime(stored["submitted_at"]))
    if not texts:
        return stored_model or NoTopics()
    latest = max(times)
    keep = [i for i, ts in enumerate(times) if ts >= latest - timedelta(days=config.topics.window_days)]
    window = list(dict.fromkeys(texts[i] for i in keep))
    if len(window) < config.topics.min_docs:
        log.info(
            "topics: %d texts in the window, fewer than min_docs=%d; skipped",
            len(window),
            config.topics.min_docs,
        )
        return stored_model or NoTopics()
    # Stored answers' vectors are in the cache (sentence means); an answer missing there is encoded whole.
    emb = response_vectors(models.embedder, window, None, config.response_vector)
    options = {"languages": config.languages, **config.topics.options}
    model = build_topics(config.topics.name, **options).fit(window, emb)
    if isinstance(model, BERTopicModel):
        save_topics(wh, model, models.embedder.model_id)
    return model


def write_batch(wh: Warehouse, config: EnrichmentConfig, batch: EnrichedBatch) -> None:
    """Upsert one enriched batch: child rows of the batch's responses are replaced, not appended."""
    t = config.tables
    ids = batch.enriched["response_id"].tolist()
    for table in (t.tags, t.sentences):
        if wh.table_exists(table):
            wh.delete(table, {"response_id": ids})
    wh.upsert(t.enriched, batch.enriched, key=TABLE_KEYS["feedback_enriched"])
    if len(batch.tags):
        wh.upsert(t.tags, batch.tags, key=TABLE_KEYS["feedback_tags"])
    if len(batch.sentences):
        wh.upsert(t.sentences, batch.sentences, key=TABLE_KEYS["feedback_sentences"])


def write_quarantine(wh: Warehouse, config: EnrichmentConfig, quarantined: pd.DataFrame, run_id: str) -> int:
    """Upsert quarantine records with the run id and time."""
    if quarantined.empty:
        return 0
    rows = quarantined.assign(run_id=run_id, quarantined_at=pd.Timestamp(utcnow()).as_unit("us"))
    return wh.upsert(config.tables.quarantine, rows, key=TABLE_KEYS["quarantine"])


def write_topics(
    wh: Warehouse, config: EnrichmentConfig, topics: BERTopicModel | NoTopics, seen: pd.DataFrame
) -> None:
    """Upsert the topic registry: label, keywords, size, first/last seen, model version."""
    table = topics.topic_table()
    if table.empty:
        return
    t = config.tables
    prior = wh.read(t.topics, ["topic_id", "first_seen"]) if wh.table_exists(t.topics) else pd.DataFrame()
    first_prior = dict(zip(prior.get("topic_id", []), prior.get("first_seen", []), strict=False))
    span = seen[seen["topic_id"] >= 0].groupby("topic_id")["submitted_at"].agg(["min", "max"])
    table = table.assign(
        first_seen=[
            first_prior.get(i) if first_prior.get(i) is not None else span["min"].get(i)
            for i in table["topic_id"]
        ],
        last_seen=[span["max"].get(i) for i in table["topic_id"]],
        model_version=topics.version,
    )
    table["first_seen"] = pd.to_datetime(table["first_seen"]).astype("datetime64[us]")
    table["last_seen"] = pd.to_datetime(table["last_seen"]).astype("datetime64[us]")
    wh.upsert(t.topics, table, key=TABLE_KEYS["topics"])


@dataclass
class RunSummary:
    """The outcome of one run (also written to the runs table)."""

    run_id: str
    rows_in: int = 0
    rows_enriched: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    watermark: tuple | None = None
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    embedded_new: int = 0
    status: str = "success"

    def check(self) -> None:
        """Rows in = rows enriched + rows quarantined, or the run is wrong."""
        if self.rows_in != self.rows_enriched + self.rows_quarantined:
            raise RuntimeError(
                f"row accounting broken: {self.rows_in} in != {self.rows_enriched} enriched + "
                f"{self.rows_quarantined} quarantined"
            )


def write_run(
    wh: Warehouse, config: EnrichmentConfig, summary: RunSummary, flow: str, started_at: datetime
) -> None:
    """Write the run record."""
    finished = utcnow()
    wm = summary.watermark
    record = {
        "run_id": summary.run_id,
        "flow": flow,
        "started_at": pd.Timestamp(started_at).as_unit("us"),
        "finished_at": pd.Timestamp(finished).as_unit("us"),
        "seconds": (finished - started_at).total_seconds(),
        "timings": json.dumps({k: round(v, 3) for k, v in summary.timings.items()}),
        "rows_in": summary.rows_in,
        "rows_enriched": summary.rows_enriched,
        "rows_quarantined": summary.rows_quarantined,
        "quarantine_reasons": json.dumps(summary.quarantine_reasons),
        "watermark_submitted_at": pd.Timestamp(wm[0]).as_unit("us") if wm else pd.NaT,
        "watermark_response_id": wm[1] if wm else None,
        "embedded_new": summary.embedded_new,
        **{
            k: summary.versions.get(k)
            for k in (
                "embedder_id",
                "sentiment_model_version",
                "tagger_version",
                "taxonomy_version",
                "topic_model_version",
            )
        },
        "status": summary.status,
    }
    frame = pd.DataFrame([record])
    frame["watermark_submitted_at"] = pd.to_datetime(frame["watermark_submitted_at"]).astype("datetime64[us]")
    wh.upsert(config.tables.runs, frame, key=TABLE_KEYS["pipeline_runs"])


def enrich_pending(
    wh: Warehouse,
    config: EnrichmentConfig,
    validated: Validated,
    segments: list[str],
    run_id: str,
    progress: Progress | None = None,
) -> RunSummary:
    """Prepare, embed, fit topics if due, enrich and write the validated rows batch by batch."""
    summary = RunSummary(run_id=run_id)
    timings = summary.timings
    write_quarantine(wh, config, validated.quarantined, run_id)
    summary.rows_quarantined = len(validated.quarantined)
    valid = validated.valid
    t0 = time.perf_counter()
    prepared = prepare_batch(valid, prepare_config(config)) if len(valid) else pd.DataFrame()
    timings["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    models = build_models(config, wh)
    timings["load_models"] = time.perf_counter() - t0
    if len(valid):
        # Encode every new distinct sentence once, up front, and build the answers' vectors from them,
        # so that topic fitting and the batches below read everything from the cache.
        t0 = time.perf_counter()
        answered = ~prepared["is_non_answer"].to_numpy(dtype=bool)
        texts = prepared.loc[answered, "text_redacted"].tolist()
        sents = prepared.loc[answered, "sentences"].tolist()
        kwargs = {"progress": progress or log_progress("embedding")}
        models.embedder.embed(list(dict.fromkeys(s for ss in sents for s in ss)), **kwargs)
        summary.embedded_new = models.embedder.misses_
        response_vectors(models.embedder, texts, sents, config.response_vector, **kwargs)
        if config.response_vector == "whole":
            summary.embedded_new += models.embedder.misses_
        timings["embed"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        models.topics = load_or_fit_topics(config, wh, models, texts, valid.loc[answered, "submitted_at"])
        timings["topics_fit"] = time.perf_counter() - t0
    summary.versions = models.versions()

    enriched_at = utcnow()
    seen: list[pd.DataFrame] = []
    step = config.batch_size
    for start in range(0, len(valid), step):
        rows, prep = valid.iloc[start : start + step], prepared.iloc[start : start + step]
        t0 = time.perf_counter()
        try:
            batch = enrich_batch(rows, prep, models, segments, run_id, enriched_at)
        except Exception as exc:  # a model failure must not sink the night: quarantine the batch
            log.exception("enrichment failed for %d rows; quarantined", len(rows))
            q = quarantine_frame(rows, "enrichment_error", f"{type(exc).__name__}: {exc}"[:500])
            write_quarantine(wh, config, q, run_id)
            summary.rows_quarantined += len(q)
            continue
        timings["enrich"] = timings.get("enrich", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        write_batch(wh, config, batch)
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - t0
        summary.rows_enriched += len(batch.enriched)
        seen.append(batch.enriched[["topic_id", "submitted_at"]])
    if seen:
        write_topics(wh, config, models.topics, pd.concat(seen))
    reasons = pd.concat(
        [validated.quarantined["reason"]] if len(validated.quarantined) else [pd.Series(dtype=object)]
    ).value_counts()
    summary.quarantine_reasons = {str(k): int(v) for k, v in reasons.items()}
    return summary


def run_enrichment(
    config: EnrichmentConfig, full: bool = False, progress: Progress | None = None, flow: str = "enrich"
) -> RunSummary:
    """One incremental enrichment run without Prefect: extract, validate, enrich, write, record."""
    started = utcnow()
    run_id = new_run_id()
    with open_warehouse(config.warehouse) as wh:
        pending, previous = extract(wh, config, full=full)
        validated, segments = validate_rows(pending, config)
        summary = enrich_pending(wh, config, validated, segments, run_id, progress)
        summary.rows_in = len(pending)
        summary.watermark = new_watermark(pending, previous)
        summary.check()
        write_run(wh, config, summary, flow, started)
    return summary


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
    from pipeline.report import write_report

    t = config.tables
    with open_warehouse(config.warehouse) as wh:
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
                    "tagger_version",
                    "taxonomy_version",
                    "topic_model_version",
                ):
                    lineage[key] = str(last.get(key))
    segments = config.source.segments
    summary = summarise(enriched, tags=tags, topics=topics, segments=segments)
    path = write_report(summary, Path(out_dir or config.report_dir), lineage=lineage)
    return summary, path
