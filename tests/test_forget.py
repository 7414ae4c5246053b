"""`feedback forget`: after it, no table, cache or stored model of the warehouse holds the answers' text
or ids (searched for in every cell of every table, not assumed), the erasure is recorded with hashed
ids, and an old export does not bring the answers back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.demo.sample import generate_survey, write_export
from pipeline.embed.base import text_hash
from pipeline.erasure import id_hash
from pipeline.ingest.load import load_export
from pipeline.runner import run_enrichment
from pipeline.warehouse import open_warehouse
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent


def cells(wh) -> dict[str, list[str]]:
    """Every cell of every table as text (bytes are skipped: vectors)."""
    out = {}
    for table in wh.tables():
        frame = wh.read(table)
        values = []
        for column in frame.columns:
            for v in frame[column].tolist():
                if isinstance(v, bytes | bytearray | memoryview):
                    continue
                values.append(v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False))
        out[table] = values
    return out


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_forget_leaves_no_trace_and_sticks(tmp_path):
    wh_path = str(tmp_path / "wh.duckdb")
    cfg = write_config(tmp_path, wh_path)
    config = load_config(cfg)
    export = write_export(generate_survey(n=150, seed=21), tmp_path / "s.parquet")
    with open_warehouse(wh_path) as wh:
        load_export(export, wh, config)
    run_enrichment(config)
    with open_warehouse(wh_path) as wh:
        enriched = wh.read("feedback_enriched")
        topics = wh.read("topics")
        sentences = wh.read("feedback_sentences")
        source = wh.read("survey_responses")
    # An answer quoted in the topic registry (the hardest place to forget), and a customer's answers.
    quoted = {q for qs in topics["representative_quotes"] for q in qs}
    target = enriched[enriched["text_redacted"].isin(quoted)].iloc[0]
    customer = enriched[(enriched["customer_id"] != target["customer_id"]) & ~enriched["is_non_answer"]].iloc[
        0
    ]["customer_id"]
    gone = enriched[enriched["customer_id"] == customer]["response_id"].tolist() + [target["response_id"]]
    texts = set(enriched[enriched["response_id"].isin(gone)]["text_redacted"])
    texts |= set(sentences[sentences["response_id"].isin(gone)]["text_redacted"])
    raw = set(source[source["response_id"].isin(gone)]["comment"].dropna())
    # Texts that other, kept answers share stay (the cache entry is theirs too).
    kept_texts = set(enriched[~enriched["response_id"].isin(gone)]["text_redacted"]) | set(
        sentences[~sentences["response_id"].isin(gone)]["text_redacted"]
    )
    secret = {t for t in texts | raw if t and t not in kept_texts and len(t) > 12}
    assert secret

    # The run published the dashboard's snapshot; a follow-up note on an erased answer waits in the
    # dashboard's side file: both must forget too.
    from pipeline.dashboard.edits import EditStore, edits_path
    from pipeline.dashboard.snapshot import snapshot_path

    snapshot, side = snapshot_path(Path(wh_path)), edits_path(Path(wh_path))
    assert snapshot.is_file()
    EditStore(config).set_followup(
        target["response_id"], status="contacted", owner="ana", note="x", who="ana"
    )
    # ... and in the warehouse, a worked follow-up and a sentiment correction of erased answers.
    from pipeline.analysis.corrections import correct_sentiment
    from pipeline.analysis.followups import set_followup

    with open_warehouse(wh_path) as wh:
        set_followup(wh, gone[0], who="bo", status="contacted", note="called back", config=config)
        correct_sentiment(wh, gone[-1], "negative", who="bo", config=config)
        assert len(wh.read(config.tables.followups, where={"response_id": [gone[0]]}))
    assert side.is_file()

    done = run(
        ["forget", "--config", str(cfg), "--response-id", target["response_id"], "--customer-id", customer]
    )
    assert done.returncode == 0, done.stderr
    assert f"erased {len(set(gone))} response(s)" in done.stdout

    with open_warehouse(wh_path) as wh:
        everything = cells(wh)
        cache = set(wh.read("embedding_cache", ["text_hash"])["text_hash"])
        erasures = wh.read("erasures")
    for table, values in everything.items():
        for v in values:
            assert not any(i in v for i in gone), (table, v)
            assert not any(s in v for s in secret), (table, v)
    assert not ({text_hash(t) for t in secret} & cache)
    for copy in (snapshot, side):
        with open_warehouse(str(copy)) as wh:
            for table, values in cells(wh).items():
                for v in values:
                    assert not any(i in v for i in gone), (copy.name, table, v)
                    assert not any(s in v for s in secret), (copy.name, table, v)
    assert set(erasures["id_hash"]) >= {id_hash(i) for i in gone}
    # The checked invariants still hold, a new report quotes nothing erased, and an old export does
    # not bring the answers back.
    assert run(["check", "--config", str(cfg)]).returncode == 0
    report = run(["report", "--config", str(cfg), "--out", str(tmp_path / "rep")])
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "rep" / "report.html").read_text()
    assert not any(s in html for s in secret) and not any(i in html for i in gone)
    with open_warehouse(wh_path) as wh:
        load_export(export, wh, config)
    summary = run_enrichment(config)
    assert summary.rows_in == 0
    with open_warehouse(wh_path) as wh:
        assert not set(wh.read("survey_responses")["response_id"]) & set(gone)


def test_rows_deleted_from_the_source_and_old_rows_are_erased_by_the_next_run(tmp_path, monkeypatch):
    wh_path = str(tmp_path / "wh.duckdb")
    config = load_config(write_config(tmp_path, wh_path, topics={"name": "topics.none.v1"}))
    rows = pd.DataFrame(
        {
            "response_id": ["a", "b", "old"],
            "survey_type": "nps",
            "score": [9, 3, 5],
            "comment": ["Delivery was quick and friendly.", "The app keeps crashing on login.", "Fine."],
            "submitted_at": ["2026-02-20", "2026-02-21", "2025-01-01"],
        }
    )
    rows.to_csv(tmp_path / "e.csv", index=False)
    monkeypatch.setenv("FEEDBACK_NOW", "2026-03-01T02:00:00")
    with open_warehouse(wh_path) as wh:
        load_export(tmp_path / "e.csv", wh, config)
    run_enrichment(config)
    with open_warehouse(wh_path) as wh:
        wh.delete("survey_responses", {"response_id": ["b"]})
    retained = config.model_copy(update={"retention_days": 365})
    summary = run_enrichment(retained)
    assert summary.rows_removed == 2
    with open_warehouse(wh_path) as wh:
        assert wh.read("feedback_enriched")["response_id"].tolist() == ["a"]
        assert wh.read("survey_responses")["response_id"].tolist() == ["a"]
        assert not any("crashing" in v for vs in cells(wh).values() for v in vs)
        reasons = set(wh.read("erasures")["reason"])
    assert reasons == {"deleted_from_source", "retention"}
