"""The right to be forgotten: erase answers from every table the pipeline writes, and record it.

:func:`forget` removes responses (by id, or every response of a customer) from the source table (the
pipeline's own copy of the survey: loads write it), the enriched, tag, sentence and quarantine tables,
human labels (``tag_labels``, ``sentiment_labels``), the follow-up queue (``followups``: notes,
owners), alerts whose evidence quotes them, the topic registry's and the stored topic models'
representative quotes, and the embedding cache where no other stored answer shares the
text. It runs in one transaction and records the erasure in ``erasures``: one row per response with its
id *hashed* (never the id itself), who asked and when, so that a later load of an old export does not
bring the answer back (:func:`erased_ids`).

The same erasure runs for rows deleted from the source (each run) and for answers older than
``retention_days`` (each run).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.embed.base import text_hash
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

KEY = "response_id"


def id_hash(response_id: object) -> str:
    """The erasure record's form of a response id: SHA-256 hex (the id itself is not kept)."""
    return hashlib.sha256(str(response_id).encode("utf-8")).hexdigest()


@dataclass
class ErasureReport:
    """What :func:`forget` removed, table by table."""

    erasure_id: str
    responses: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    reason: str = "request"
    who: str = ""
    stale_reports: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id,
            "responses": self.responses,
            "rows": self.rows,
            "reason": self.reason,
            "who": self.who,
            "stale_reports": self.stale_reports,
        }


def resolve_ids(
    wh: Warehouse,
    config: EnrichmentConfig,
    response_ids: Iterable[str] = (),
    customer_ids: Iterable[str] = (),
) -> list[str]:
    """The response ids to erase: those given, plus every response of the given customers (matched on
    the ``source.customer_id`` column, default ``customer_id``, in the source and enriched tables;
    hashed customer ids of ``source.personal_data`` match too)."""
    ids = {str(i) for i in response_ids}
    customers = [str(c) for c in customer_ids]
    if customers:
        from pipeline.ingest.source import pseudonym

        column = config.source.customer_id or "customer_id"
        values = customers + [str(pseudonym(c)) for c in customers]
        found_column = False
        for table in (config.tables.source, config.tables.enriched):
            if column in wh.columns(table):
                found_column = True
                rows = wh.read(table, [KEY, column], where={column: values})
                ids |= set(rows[KEY].astype(str))
        if not found_column:
            from pipeline.errors import ConfigError

            raise ConfigError(
                f"No column {column!r} in {config.tables.source} or {config.tables.enriched} to find "
                "customers by. Set source.customer_id in the config to the column that identifies a "
                "customer, or erase by --response-id."
            )
    return sorted(ids)


def _texts(wh: Warehouse, config: EnrichmentConfig, ids: list[str]) -> tuple[set[str], set[str]]:
    """The stored answer texts and sentence texts of ``ids`` (redacted: what models and caches saw)."""
    t = config.tables
    answers: set[str] = set()
    sentences: set[str] = set()
    if "text_redacted" in wh.columns(t.enriched):
        rows = wh.read(t.enriched, ["text_redacted"], where={KEY: ids})
        answers = {str(x) for x in rows["text_redacted"].dropna() if str(x)}
    if "text_redacted" in wh.columns(t.sentences):
        rows = wh.read(t.sentences, ["text_redacted"], where={KEY: ids})
        sentences = {str(x) for x in rows["text_redacted"].dropna() if str(x)}
    return answers, sentences


def _mentions(value: object, needles: list[str]) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return any(n and n in text for n in needles)


def _scrub_quotes(quotes: object, texts: set[str]) -> tuple[list[str], bool]:
    items = [str(q) for q in (list(quotes) if quotes is not None and not isinstance(quotes, str) else [])]
    kept = [q for q in items if not any(t and (t in q or q in t) for t in texts)]
    return kept, len(kept) != len(items)


def forget_ids(
    wh: Warehouse,
    config: EnrichmentConfig,
    ids: list[str],
    *,
    reason: str = "request",
    who: str | None = None,
    delete_source: bool = True,
) -> ErasureReport:
    """Erase the responses ``ids`` from every table the pipeline writes, in one transaction.

    Args:
        wh: The warehouse (hold the run lock: the erasure writes).
        config: Table names.
        ids: Response ids.
        reason: Recorded: ``request``, ``deleted_from_source`` or ``retention``.
        who: Recorded: who asked (default: the OS user).
        delete_source: Also delete the rows of the source table.

    Returns:
        What was removed, table by table.
    """
    t = config.tables
    report = ErasureReport(erasure_id=f"erasure-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}")
    report.reason, report.who = reason, who or _user()
    ids = sorted({str(i) for i in ids})
    if not ids:
        return report
    answers, sentences = _texts(wh, config, ids)
    texts = answers | sentences
    needles = [*ids, *sorted(texts)]
    with wh.transaction():
        tables = [t.tags, t.sentences, t.enriched, t.quarantine, t.followups, t.sentiment_labels]
        tables += [t.source] if delete_source else []
        for table in tables:
            n = wh.delete(table, {KEY: ids}) if KEY in wh.columns(table) else 0
            if n:
                report.rows[table] = n
        if wh.table_exists(t.tag_labels):
            labels = wh.read(t.tag_labels)
            key = "id" if "id" in labels.columns else KEY
            hit = (
                labels[key].astype(str).isin(ids)
                if key in labels.columns
                else pd.Series(False, index=labels.index)
            )
            if "text" in labels.columns and texts:
                hit |= labels["text"].astype(str).isin(texts)
            if hit.any():
                wh.delete(t.tag_labels, {key: labels.loc[hit, key].astype(str).tolist()})
                report.rows[t.tag_labels] = int(hit.sum())
        if wh.table_exists(t.alerts) and "evidence" in wh.columns(t.alerts):
            alerts = wh.read(t.alerts, ["alert_id", "evidence"])
            gone = [
                a
                for a, ev in zip(alerts["alert_id"], alerts["evidence"], strict=True)
                if _mentions(ev, needles)
            ]
            if gone:  # recomputed by the next run without these answers
                report.rows[t.alerts] = wh.delete(t.alerts, {"alert_id": gone})
        if "watermark_response_id" in wh.columns(t.runs):  # a run record may name the last row it saw
            runs = wh.read(t.runs, where={"watermark_response_id": ids})
            if len(runs):
                wh.upsert(t.runs, runs.assign(watermark_response_id=None), key=["run_id"])
                report.rows[t.runs + ".watermark_response_id"] = len(runs)
        if texts:
            _scrub_topics(wh, config, texts, report)
            _scrub_cache(wh, config, answers, sentences, report)
        _record(wh, config, ids, report)
    report.responses = len(ids)
    report.stale_reports = _stale_reports(config, needles)
    log.info("erased %d response(s) (%s): %s", len(ids), reason, report.rows)
    return report


def _scrub_topics(wh: Warehouse, config: EnrichmentConfig, texts: set[str], report: ErasureReport) -> None:
    """Remove the erased answers from the topic registry's quotes and from stored topic models."""
    t = config.tables
    if wh.table_exists(t.topics) and "representative_quotes" in wh.columns(t.topics):
        topics = wh.read(t.topics)
        changed = []
        for i, quotes in enumerate(topics["representative_quotes"]):
            kept, hit = _scrub_quotes(quotes, texts)
            if hit:
                topics.at[i, "representative_quotes"] = kept
                label = str(topics.at[i, "label"]) if "label" in topics.columns else ""
                if any(label and (label in x or x[:60] == label) for x in texts):
                    topics.at[i, "label"] = f"topic {topics.at[i, 'topic_id']}"
                changed.append(i)
        if changed:
            wh.upsert(t.topics, topics.loc[changed], key=["topic_id"])
            report.rows[t.topics + ".representative_quotes"] = len(changed)
    _scrub_topic_versions(wh, config, texts, report)


def _scrub_topic_versions(
    wh: Warehouse, config: EnrichmentConfig, texts: set[str], report: ErasureReport
) -> None:
    """Remove the erased answers from the quotes of every stored topic model version (model store)."""
    from pipeline.model_store import open_store

    store = open_store(config, "topics", wh)
    changed = 0
    for manifest in store.versions():
        file = store.path(str(manifest["version"])) / "topics.json"
        if not file.exists():
            continue
        raw = file.read_text(encoding="utf-8")
        meta = json.loads(raw)
        hit = False
        for topic, quotes in dict(meta.get("quotes") or {}).items():
            kept, dropped = _scrub_quotes(quotes, texts)
            if dropped:
                meta["quotes"][topic], hit = kept, True
        if hit or _mentions(raw, sorted(texts)):
            store.replace_file(
                str(manifest["version"]), "topics.json", json.dumps(meta, indent=2).encode("utf-8")
            )
            changed += 1
    if changed:
        report.rows["model_store.topics"] = changed


def _scrub_cache(
    wh: Warehouse, config: EnrichmentConfig, answers: set[str], sentences: set[str], report: ErasureReport
) -> None:
    """Delete the cached vectors of the erased texts that no other stored answer or sentence has."""
    t = config.tables
    still = set()
    if answers and "text_redacted" in wh.columns(t.enriched):
        still |= set(
            wh.read(t.enriched, ["text_redacted"], where={"text_redacted": sorted(answers)})["text_redacted"]
        )
    if sentences and "text_redacted" in wh.columns(t.sentences):
        rows = wh.read(t.sentences, ["text_redacted"], where={"text_redacted": sorted(sentences)})
        still |= set(rows["text_redacted"])
    hashes = sorted({text_hash(x) for x in (answers | sentences) - {str(s) for s in still}})
    if hashes and wh.table_exists(t.embedding_cache):
        n = wh.delete(t.embedding_cache, {"text_hash": hashes})
        if n:
            report.rows[t.embedding_cache] = n


def _record(wh: Warehouse, config: EnrichmentConfig, ids: list[str], report: ErasureReport) -> None:
    frame = pd.DataFrame(
        {
            "id_hash": [id_hash(i) for i in ids],
            "erasure_id": report.erasure_id,
            "reason": report.reason,
            "who": report.who,
            "erased_at": pd.Timestamp(utcnow()).as_unit("us"),
        }
    )
    wh.upsert(config.tables.erasures, frame, key=["id_hash"])


def erased_ids(wh: Warehouse, config: EnrichmentConfig, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that were erased on request (a load must not bring them back)."""
    table = config.tables.erasures
    ids = [str(i) for i in ids]
    if not ids or not wh.table_exists(table):
        return set()
    by_hash = {id_hash(i): i for i in ids}
    rows = wh.read(table, ["id_hash", "reason"], where={"id_hash": list(by_hash)})
    rows = rows[rows["reason"].astype(str) == "request"]
    return {by_hash[h] for h in rows["id_hash"].astype(str)}


def _stale_reports(config: EnrichmentConfig, needles: list[str]) -> list[str]:
    """Report files written before the erasure that still quote an erased answer (files, not tables:
    the caller is told to delete or regenerate them)."""
    folder = Path(config.report_dir)
    found = []
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".html", ".json", ".csv", ".txt", ".md"):
                try:
                    content = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if any(n and n in content for n in needles):
                    found.append(str(path))
    return found


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container without /etc/passwd entry
        return "unknown"


def forget(
    wh: Warehouse,
    config: EnrichmentConfig,
    response_ids: Iterable[str] = (),
    customer_ids: Iterable[str] = (),
    who: str | None = None,
) -> ErasureReport:
    """Erase responses on request (by id and/or customer); see the module docstring."""
    from pipeline.dashboard.run_hooks import after_erasure

    ids = resolve_ids(wh, config, response_ids, customer_ids)
    report = forget_ids(wh, config, ids, reason="request", who=who)
    after_erasure(wh, config, ids)  # the dashboard's snapshot and pending edits forget them too
    return report


def expired_ids(wh: Warehouse, config: EnrichmentConfig) -> list[str]:
    """Responses submitted more than ``retention_days`` before now (empty when retention is off)."""
    if config.retention_days is None:
        return []
    cutoff = pd.Timestamp(utcnow()) - pd.Timedelta(days=config.retention_days)
    found: set[str] = set()
    for table in (config.tables.source, config.tables.enriched):
        if {"submitted_at", KEY} <= set(wh.columns(table)):
            q = wh._quote
            rows = wh._query(
                f"SELECT {q(KEY)} AS {q(KEY)} FROM {wh._qualified(table)} WHERE {q('submitted_at')} < :cutoff",
                {"cutoff": cutoff.to_pydatetime()},
                {KEY: "text"},
            )
            found |= set(rows[KEY].astype(str))
    return sorted(found)
