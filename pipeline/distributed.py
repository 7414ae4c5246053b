"""Enrichment pages on a Dask cluster: the workers compute, the flow reads and writes.

With ``executor: {dask: {address: ...}}`` in the config (or ``feedback enrich --dask ADDRESS``) the pages
of :func:`pipeline.runner.run_steps` leave the flow process: each page of ``batch_size`` pending rows is

1. validated in the flow (cheap; the quarantined rows never travel),
2. prepared on a worker (:func:`prepare_on_worker`: normalise, language, redaction, sentences),
3. looked up in the embedding cache by the flow (:func:`cached_vectors`: the workers never open the
   warehouse), then
4. embedded and scored on a worker (:func:`score_on_worker`): only the sentences the cache missed are
   encoded, and the new vectors come back with the batch, and
5. written by the flow, with its new cache entries, in one transaction (:func:`write_result`): one writer.

At most ``batches_in_flight`` pages are on the cluster at once, so the flow's memory stays bounded by a few
pages. Models are loaded once per worker process (:func:`worker_models`, keyed by :class:`WorkerModels`:
the config and the model-store folders of the run's versions), never per batch; a worker whose models
report other versions than the flow's fails the run rather than write mixed lineage.

A batch whose worker dies is submitted again (Dask reschedules the work of a lost worker itself; when it
gives up, :func:`run_pages` resubmits up to ``max_attempts`` times): the flow writes a batch only once, by
key, so nothing is lost or written twice. A model failure on a worker quarantines that batch's rows
(``enrichment_error``), as on the local path.

This module imports no Prefect and no Dask: the submitting is injected (``flows/dask_pages.py`` wires
it to Prefect's ``DaskTaskRunner``, and imports ``dask`` only when a run uses it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.embed.base import text_hash
from pipeline.embed.response import response_model_id
from pipeline.enrich import EnrichedBatch, Models
from pipeline.errors import FeedbackError
from pipeline.ingest.pending import ROW_HASH
from pipeline.ingest.source import Validated, quarantine_frame
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

LOCAL_PREFIX = "local:"
# The math libraries a worker process limits to one thread (a fair comparison of N workers on N cores).
MATH_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",  # lingua's parallel language detection (a Rust thread pool)
}


def parse_local(address: str) -> int | None:
    """The number of workers of a ``local:N`` address; None for a scheduler address.

    Raises:
        FeedbackError: when ``local:`` is not followed by a positive whole number.
    """
    if not address.startswith(LOCAL_PREFIX):
        return None
    n = address[len(LOCAL_PREFIX) :]
    if not n.isdigit() or int(n) < 1:
        raise FeedbackError(
            f"--dask {address!r}: expected local:N with N >= 1 worker processes (e.g. local:2), or a "
            "scheduler address such as tcp://10.0.0.5:8786"
        )
    return int(n)


# ---- the models of a worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerModels:
    """What a worker needs to build the run's models without the warehouse (hashable: the cache key).

    Attributes:
        config_json: The run's config (paths absolute).
        tagger_dir: The tagger version folder the flow loaded; None for a zero-shot tagger fitted on the
            taxonomy.
        sentiment_dir: The promoted sentiment version folder; None for the configured model.
        topics_dir: The promoted topic model's folder; None when the run has none yet.
        versions: The flow's lineage (:meth:`pipeline.enrich.Models.versions`), which the worker's models
            must reproduce.
    """

    config_json: str
    tagger_dir: str | None
    sentiment_dir: str | None
    topics_dir: str | None
    versions: tuple[tuple[str, str], ...]


def worker_models_of(config: EnrichmentConfig, wh: Warehouse, models: Models) -> WorkerModels:
    """The :class:`WorkerModels` of the flow's loaded models: each version as a folder of the model store.

    Versions kept in the warehouse are unpacked under ``state_dir/models``; on a cluster of several
    machines that folder (or ``model_store.path``) must be on a path every worker can read.
    """
    from pipeline.model_store import open_store, resolve_version_dir
    from pipeline.topics import NoTopics
    from pipeline.topics.versions import topics_store

    if config.tagger.model_dir is not None:
        tagger_dir = resolve_version_dir(config.tagger.model_dir, "tagger")
    elif "tagger" not in config.model_store.in_warehouse or wh is not None:
        tagger_dir = open_store(config, "tagger", wh).promoted_path()
    else:  # pragma: no cover - the flow always has the warehouse
        tagger_dir = None
    sentiment_dir = open_store(config, "sentiment", wh).promoted_path()
    topics_dir = None
    if not isinstance(models.topics, NoTopics):
        topics_dir = topics_store(config, wh).path(models.topics.version)
    return WorkerModels(
        config_json=config.model_dump_json(),
        tagger_dir=str(tagger_dir) if tagger_dir else None,
        sentiment_dir=str(sentiment_dir) if sentiment_dir else None,
        topics_dir=str(topics_dir) if topics_dir else None,
        versions=tuple(sorted(models.versions().items())),
    )


_WORKER_MODELS: dict[WorkerModels, Models] = {}


def worker_models(spec: WorkerModels) -> Models:
    """The models of ``spec``, loaded once per worker process (later calls return the same object).

    The encoder's cache here is in memory (the taxonomy's examples, encoded once); the batches get the
    warehouse's cached vectors from the flow (:func:`score_on_worker`).
    """
    models = _WORKER_MODELS.get(spec)
    if models is not None:
        return models
    from pipeline.embed import CachedEmbedder, MemoryVectorStore, build_embedder
    from pipeline.sentiment import sentiment_for_run
    from pipeline.tagging import build_tagger
    from pipeline.tagging.lifecycle import tagger_for_run
    from pipeline.tagging.taxonomy import load_taxonomy
    from pipeline.topics import BERTopicModel, NoTopics

    t0 = time.perf_counter()
    config = EnrichmentConfig.model_validate_json(spec.config_json)
    embedder = CachedEmbedder(
        build_embedder(config.embedder.name, **config.embedder.options), MemoryVectorStore()
    )
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    sentiment = sentiment_for_run(
        config.sentiment.name,
        config.sentiment.options,
        embedder,
        response_vector=config.response_vector,
        promoted=spec.sentiment_dir,
    )
    if spec.tagger_dir is not None:
        tagger_config = config.model_copy(deep=True)
        tagger_config.tagger.model_dir = spec.tagger_dir  # type: ignore[assignment]
        tagger = tagger_for_run(tagger_config, taxonomy, embedder)
    else:
        tagger = build_tagger(config.tagger.name, taxonomy, **config.tagger.options).fit(embedder)
    topics = BERTopicModel.load(spec.topics_dir) if spec.topics_dir else NoTopics()
    models = Models(embedder, sentiment, tagger, taxonomy, topics, response_vector=config.response_vector)
    got = tuple(sorted(models.versions().items()))
    if got != spec.versions:
        raise FeedbackError(
            f"worker pid {os.getpid()} loaded other model versions than the flow: {dict(got)} vs "
            f"{dict(spec.versions)}. Give every worker the same package versions and a model store path "
            "it can read (model_store.path, state_dir)."
        )
    _WORKER_MODELS.clear()  # one run's models at a time: a worker serving many runs stays bounded
    _WORKER_MODELS[spec] = models
    log.info("worker %d: models loaded in %.1f s", os.getpid(), time.perf_counter() - t0)
    return models


def limit_math_threads(n: int = 1) -> None:
    """Limit this process's math libraries (BLAS, OpenMP) to ``n`` threads (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


# ---- what runs on a worker ------------------------------------------------------------------------------


def prepare_on_worker(valid: pd.DataFrame, config_json: str) -> pd.DataFrame:
    """Stage ``prepare`` of one page, on a worker (no I/O): :func:`pipeline.enrich.prepare_batch`."""
    from pipeline.enrich import prepare_batch
    from pipeline.prepare import prepare_config_of

    config = EnrichmentConfig.model_validate_json(config_json)
    return prepare_batch(valid, prepare_config_of(config))


class _BatchVectors:
    """A vector store over the cached vectors the flow sent, recording the vectors the batch adds."""

    def __init__(self, found: dict[str, dict[str, np.ndarray]]) -> None:
        self.found = {k: dict(v) for k, v in found.items()}
        self.added: dict[str, dict[str, np.ndarray]] = {}

    def read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        have = self.found.get(model_id, {})
        return {h: have[h] for h in hashes if h in have}

    def write_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int:
        for h, v in zip(hashes, vectors, strict=True):
            self.found.setdefault(model_id, {})[h] = v
            self.added.setdefault(model_id, {})[h] = v
        return len(hashes)


@dataclass
class BatchResult:
    """What a worker sends back for one page.

    Attributes:
        batch: The enriched frames; None when the models failed (``error`` says why).
        error: ``Type: message`` of a model failure (the page's rows are then quarantined).
        new_vectors: ``{cache model id: (hashes, vectors)}`` encoded by this batch, for the flow to cache.
        encoded: Distinct texts the worker encoded.
        seconds: The worker's time on the batch.
        pid: The worker process.
    """

    batch: EnrichedBatch | None
    error: str | None
    new_vectors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    encoded: int = 0
    seconds: float = 0.0
    pid: int = 0


def score_on_worker(
    spec: WorkerModels,
    valid: pd.DataFrame,
    prepared: pd.DataFrame,
    segments: list[str],
    cached: dict[str, dict[str, np.ndarray]],
    run_id: str,
) -> BatchResult:
    """Stages ``embed`` and ``score`` of one page, on a worker: encode what ``cached`` lacks, score.

    A model failure is returned (``error``), not raised: the flow quarantines the page as the local path
    does. Anything raised is the worker's own failure, and the flow resubmits the batch.
    """
    from pipeline.embed import CachedEmbedder
    from pipeline.enrich import enrich_batch

    t0 = time.perf_counter()
    models = worker_models(spec)
    store = _BatchVectors(cached)
    base = models.embedder.embedder if isinstance(models.embedder, CachedEmbedder) else models.embedder
    batch_models = dataclasses.replace(models, embedder=CachedEmbedder(base, store))
    try:
        batch = enrich_batch(valid, prepared, batch_models, segments, run_id, utcnow())
        error = None
    except Exception as exc:  # a model failure must not sink the night: the flow quarantines the page
        log.exception("enrichment failed for %d rows on worker %d", len(valid), os.getpid())
        batch, error = None, f"{type(exc).__name__}: {exc}"[:500]
    new = {
        mid: (list(vecs), np.stack(list(vecs.values())).astype(np.float32))
        for mid, vecs in store.added.items()
        if vecs
    }
    encoded = len(store.added.get(base.model_id, {}))
    return BatchResult(batch, error, new, encoded, time.perf_counter() - t0, os.getpid())


# ---- what the flow does around them ---------------------------------------------------------------------


def cached_vectors(
    wh: Warehouse, config: EnrichmentConfig, embedder_id: str, prepared: pd.DataFrame
) -> dict[str, dict[str, np.ndarray]]:
    """The warehouse's cached vectors of a prepared page: its answered sentences under the encoder's id,
    and its answers under the answer-vector id (``response_vector``), ``{model id: {hash: vector}}``."""
    if not len(prepared):
        return {}
    answered = ~prepared["is_non_answer"].to_numpy(dtype=bool)
    texts = prepared.loc[answered, "text_redacted"].astype(str).tolist()
    sentences = [s for ss in prepared.loc[answered, "sentences"] for s in ss]
    whole = config.response_vector == "whole"
    sentence_hashes = list(dict.fromkeys(text_hash(s) for s in (sentences + texts if whole else sentences)))
    found = {embedder_id: wh.read_vectors(embedder_id, sentence_hashes) if sentence_hashes else {}}
    if not whole and texts:

        class _Id:  # response_model_id reads only the encoder's id
            model_id = embedder_id

        rid = response_model_id(_Id(), config.response_vector)  # type: ignore[arg-type]
        found[rid] = wh.read_vectors(rid, list(dict.fromkeys(text_hash(t) for t in texts)))
    return found


def write_result(
    wh: Warehouse,
    config: EnrichmentConfig,
    validated: Validated,
    result: BatchResult | None,
    summary: Any,
) -> None:
    """Write one page (as :func:`pipeline.runner.score_and_write_stage` does, from a worker's result):
    its new cache entries, enriched rows, tags, sentences and quarantine records in ONE transaction."""
    from pipeline.runner import write_batch

    valid, quarantined = validated.valid, validated.quarantined
    reasons: list[str] = list(quarantined["reason"].astype(str)) if len(quarantined) else []
    batch = result.batch if result is not None else None
    if result is not None and result.error is not None:
        failed = quarantine_frame(
            valid.drop(columns=[ROW_HASH], errors="ignore"), "enrichment_error", result.error
        )
        if ROW_HASH in valid:
            failed["source_hash"] = valid[ROW_HASH].to_numpy()
        quarantined = pd.concat([quarantined, failed])
        reasons += ["enrichment_error"] * len(failed)
    if batch is not None:
        batch.enriched["source_hash"] = valid[ROW_HASH].to_numpy() if ROW_HASH in valid else None
    # The cache entries first, as the local path's embed stage does (a kill in between leaves cached
    # vectors and pending rows); then the page in one transaction (write_batch).
    for mid, (hashes, vectors) in (result.new_vectors if result is not None else {}).items():
        wh.write_vectors(mid, hashes, vectors)
    write_batch(wh, config, batch, quarantined, summary.run_id)
    summary.rows_enriched += len(batch.enriched) if batch is not None else 0
    summary.rows_quarantined += len(quarantined)
    summary.embedded_new += result.encoded if result is not None else 0
    for reason in reasons:
        summary.quarantine_reasons[reason] = summary.quarantine_reasons.get(reason, 0) + 1


# ---- the page loop --------------------------------------------------------------------------------------


class Future(Protocol):
    """What :func:`run_pages` needs of a submitted call."""

    def result(self) -> Any: ...


@dataclass
class Submitter:
    """How :func:`run_pages` reaches the cluster (injected: Prefect's DaskTaskRunner in the flow).

    Attributes:
        submit: ``submit(fn, params) -> Future`` runs ``fn(**params)`` on a worker.
        wait_any: ``wait_any(futures) -> done`` blocks until at least one of ``futures`` is done.
    """

    submit: Callable[[Callable[..., Any], dict[str, Any]], Future]
    wait_any: Callable[[list[Future]], Iterable[Future]]


@dataclass(eq=False)  # pages compare by identity
class _Page:
    validated: Validated
    segments: list[str]
    phase: str = "prepare"
    future: Future | None = None
    prepared: pd.DataFrame | None = None
    cached: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    attempts: int = 0
    submitted_at: float = 0.0
    result: BatchResult | None = None


def run_pages(
    wh: Warehouse,
    config: EnrichmentConfig,
    models: Models,
    summary: Any,
    pages: Iterator[pd.DataFrame],
    submitter: Submitter,
    in_flight: int,
    max_attempts: int = 3,
) -> None:
    """Enrich and write every page on the cluster, with at most ``in_flight`` pages submitted at once.

    Args:
        wh: The flow's warehouse (the only connection that reads the cache or writes).
        config: The run's config.
        models: The flow's loaded models (their versions and store folders go to the workers).
        summary: The run's :class:`pipeline.runs.RunSummary`, updated as pages are written.
        pages: The pending pages (:func:`pipeline.runner.pending_pages`).
        submitter: How calls reach the cluster.
        in_flight: The most pages on the cluster at once.
        max_attempts: Submissions of one step of a page before the run fails (a lost worker, a failure
            outside the models); the unwritten rows then stay pending for the next run.
    """
    from pipeline.runner import validate_rows

    spec = worker_models_of(config, wh, models)
    config_json = spec.config_json
    active: list[_Page] = []
    written = 0
    more = True

    def submit(page: _Page) -> None:
        page.attempts += 1
        page.submitted_at = time.perf_counter()
        if page.phase == "prepare":
            params = {"valid": page.validated.valid, "config_json": config_json}
            page.future = submitter.submit(prepare_on_worker, params)
        else:
            params = {
                "spec": spec,
                "valid": page.validated.valid,
                "prepared": page.prepared,
                "segments": page.segments,
                "cached": page.cached,
                "run_id": summary.run_id,
            }
            page.future = submitter.submit(score_on_worker, params)

    while True:
        while more and len(active) < in_flight:
            try:
                rows = next(pages)
            except StopIteration:
                more = False
                break
            t0 = time.perf_counter()
            validated, segments = validate_rows(rows, config)
            _add(summary, "validate", t0)
            page = _Page(validated, segments)
            if len(validated.valid):
                submit(page)
            else:  # nothing for the cluster: its quarantined rows are written in their turn
                page.phase = "done"
            active.append(page)
        if not active:
            break
        running = [p.future for p in active if p.phase != "done" and p.future is not None]
        done: set[int] = set()
        if running:
            t0 = time.perf_counter()
            done = set(map(id, submitter.wait_any(running)))
            _add(summary, "wait_cluster", t0)
        for page in [p for p in active if p.phase != "done" and id(p.future) in done]:
            try:
                out = page.future.result()  # type: ignore[union-attr]
            except Exception as exc:
                if page.attempts >= max_attempts:
                    raise FeedbackError(
                        f"a batch of {len(page.validated.valid)} rows failed {page.attempts} times on the "
                        f"cluster ({page.phase}): {type(exc).__name__}: {exc}. Its rows stay pending; "
                        "check the workers' logs and rerun."
                    ) from exc
                log.warning("batch %s failed on the cluster (%s); submitting it again", page.phase, exc)
                submit(page)
                continue
            if page.phase == "prepare":
                page.prepared = out
                t0 = time.perf_counter()
                page.cached = cached_vectors(wh, config, models.embedder.model_id, out)
                _add(summary, "cache_lookup", t0)
                page.phase, page.attempts = "score", 0
                submit(page)
                continue
            page.phase, page.result = "done", out
            _add_value(summary, "worker_score", out.seconds)
        # Pages are written in page order, as on the local path: the stored rows' order is then the
        # same (the topic fit reads the stored window in that order).
        while active and active[0].phase == "done":
            page = active.pop(0)
            t0 = time.perf_counter()
            write_result(wh, config, page.validated, page.result, summary)
            _add(summary, "write", t0)
            written += 1
    log.info("cluster: %d pages written", written)


def _add(summary: Any, stage: str, t0: float) -> None:
    _add_value(summary, stage, time.perf_counter() - t0)


def _add_value(summary: Any, stage: str, seconds: float) -> None:
    summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds
