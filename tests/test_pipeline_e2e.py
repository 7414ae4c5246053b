"""End to end: sample survey -> warehouse -> enrichment -> tables, on a real DuckDB file and real models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.demo.sample import generate_survey, write_export
from pipeline.errors import SchemaError
from pipeline.ingest.load import load_export
from pipeline.runner import run_enrichment
from pipeline.warehouse import open_warehouse

pytestmark = pytest.mark.slow

DATA_TABLES = ["feedback_enriched", "feedback_tags", "feedback_sentences", "quarantine", "topics"]


def make_config(tmp: Path, **extra: object) -> Path:
    """A config file in tmp that uses the project's taxonomy and a fresh DuckDB file."""
    cfg = tmp / "enrichment.yaml"
    body = {
        "warehouse": str(tmp / "wh.duckdb"),
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "tagger": {"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml")},
        "topics": {"min_docs": 30},
        "model_store": {"path": str(tmp / "models")},
        **extra,
    }
    cfg.write_text(json.dumps(body))  # JSON is YAML
    return cfg


def snapshot(warehouse: str) -> dict[str, pd.DataFrame]:
    out = {}
    with open_warehouse(warehouse) as wh:
        for table in DATA_TABLES:
            df = wh.read(table) if wh.table_exists(table) else pd.DataFrame()
            key = [c for c in ("response_id", "tag", "sentence_id", "topic_id") if c in df.columns]
            out[table] = df.sort_values(key).reset_index(drop=True).astype(str) if len(df) else df
    return out


@pytest.fixture(scope="module")
def enriched_once(tmp_path_factory):
    """One sample survey (400 rows with every data-quality issue), loaded and enriched once."""
    tmp = tmp_path_factory.mktemp("e2e")
    config = load_config(make_config(tmp))
    export = write_export(generate_survey(n=400, seed=3), tmp / "survey.parquet")
    with open_warehouse(config.warehouse) as wh:
        report = load_export(export, wh, config)
    summary = run_enrichment(config)
    return config, report, summary


def test_rows_in_equal_enriched_plus_quarantined(enriched_once):
    config, report, summary = enriched_once
    with open_warehouse(config.warehouse) as wh:
        n_src, n_enr, n_q = (wh.count(t) for t in ("survey_responses", "feedback_enriched", "quarantine"))
        reasons = wh.read("quarantine")["reason"].value_counts().to_dict()
    assert report.exact_duplicates > 0  # the sample's resent webhooks collapsed by response_id
    assert n_src == n_enr + n_q == summary.rows_in
    assert summary.rows_enriched == n_enr and summary.rows_quarantined == n_q
    assert {"score_out_of_range", "missing_score", "unknown_survey_type", "missing_submitted_at"} <= set(
        reasons
    )


def test_enriched_rows_carry_languages_tags_sentiment_topics_and_lineage(enriched_once):
    config, _, summary = enriched_once
    with open_warehouse(config.warehouse) as wh:
        enr = wh.read("feedback_enriched")
        tags = wh.read("feedback_tags")
        sents = wh.read("feedback_sentences")
        topics = wh.read("topics")
    answered = enr[~enr["is_non_answer"]]
    assert set(answered["language"]) >= {"en", "pt", "es", "fr", "nl"}
    assert (answered["tags"].map(len) > 0).mean() >= 0.7
    assert set(answered["sentiment_label"]) <= {"negative", "neutral", "positive", "mixed"}
    assert answered["sentiment_score"].between(-1, 1).all()
    assert {"channel", "region", "plan", "customer_id"} <= set(enr.columns)  # segments carried through
    # the survey's scores agree with the text's sentiment
    assert (
        answered.groupby("sentiment_label")["score"].mean()["positive"]
        > answered.groupby("sentiment_label")["score"].mean()["negative"] + 2
    )
    # non-answers are enriched (their score counts) but get no sentiment or tags
    non = enr[enr["is_non_answer"]]
    assert len(non) > 0 and non["tags"].map(len).eq(0).all() and non["sentiment_label"].isna().all()
    # PII never reaches the stored text
    assert not enr["text_redacted"].str.contains(r"[\w.]+@[\w-]+\.\w+", regex=True).any()
    # lineage on every row
    for col in ("run_id", "embedder_id", "sentiment_model_version", "tagger_version", "taxonomy_version"):
        assert enr[col].notna().all() and enr[col].nunique() == 1
    assert enr["embedder_id"].iloc[0] == summary.versions["embedder_id"]
    # long tables are consistent with the wide one
    long_pairs = set(zip(tags["response_id"], tags["tag"], strict=True))
    wide_pairs = {(r, t) for r, ts in zip(enr["response_id"], enr["tags"], strict=True) for t in ts}
    assert long_pairs == wide_pairs
    assert tags["sentiment_score"].between(-1, 1).all()
    assert set(sents["response_id"]) == set(answered["response_id"])
    # topics: a registry row for every assigned topic id
    assigned = set(answered.loc[answered["topic_id"] >= 0, "topic_id"])
    assert assigned and assigned <= set(topics["topic_id"])
    assert (answered["topic_id"] == -1).mean() < 0.5


def test_rerun_changes_nothing_and_encodes_nothing(enriched_once):
    config, _, _ = enriched_once
    before = snapshot(config.warehouse)
    with open_warehouse(config.warehouse) as wh:
        cache_before = wh.count("embedding_cache")
    again = run_enrichment(config)
    assert again.rows_in == 0 and again.embedded_new == 0
    after = snapshot(config.warehouse)
    for table in DATA_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
    with open_warehouse(config.warehouse) as wh:
        assert wh.count("embedding_cache") == cache_before
        runs = wh.read("pipeline_runs").sort_values("started_at")
    assert list(runs["rows_in"])[-1] == 0 and (runs["status"] == "success").all()
    # the full (watermark-less) mode also skips what is already processed
    assert run_enrichment(config, full=True).rows_in == 0


def test_incremental_runs_take_only_new_rows(tmp_path):
    config = load_config(make_config(tmp_path))
    survey = generate_survey(n=300, seed=5).sort_values("submitted_at", na_position="first")
    first, second = survey.iloc[:200], survey.iloc[200:]
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(first, tmp_path / "a.parquet"), wh, config)
    s1 = run_enrichment(config)
    with open_warehouse(config.warehouse) as wh:
        stamp = wh.read("feedback_enriched", ["response_id", "run_id"])
        load_export(write_export(second, tmp_path / "b.parquet"), wh, config)
    s2 = run_enrichment(config)
    assert s1.rows_in > 0 and s2.rows_in == second["response_id"].nunique() - len(
        set(second["response_id"]) & set(first["response_id"])
    )
    with open_warehouse(config.warehouse) as wh:
        total = wh.count("feedback_enriched") + wh.count("quarantine")
        now = wh.read(
            "feedback_enriched", ["response_id", "run_id"], where={"response_id": list(stamp["response_id"])}
        )
        assert total == wh.count("survey_responses")
    # rows of the first run were not re-enriched
    assert dict(zip(now["response_id"], now["run_id"], strict=True)) == dict(
        zip(stamp["response_id"], stamp["run_id"], strict=True)
    )


def test_bad_input_never_crashes_and_never_vanishes(tmp_path):
    config = load_config(make_config(tmp_path, topics={"name": "topics.none.v1"}))
    long = "The delivery was late. " * 2200  # ~50,000 characters
    csv = tmp_path / "bad.csv"
    csv.write_bytes(
        (
            "response_id,survey_type,score,comment,submitted_at,channel\n"
            "b1,nps,3,,2026-10-01,web\n"
            "b2,nps,4,   ,2026-10-01,web\n"
            f"b3,nps,2,{long},2026-10-01,app\n"
        ).encode()
        + b"b4,nps,9,atendimento \xff\xfe muito bom,2026-10-02,app\n"
        + (
            "b5,nps,14,too high,2026-10-02,web\n"
            "b6,nps,abc,not a number,2026-10-02,web\n"
            "b7,nps,8,first version,2026-10-03,web\n"
            "b7,nps,9,second version,2026-10-03,web\n"
            "b8,nps,7,Die Lieferung war leider sehr spät und der Kundendienst unfreundlich,2026-10-03,web\n"
            "b9,survey,7,what is this,2026-10-03,web\n"
            ",nps,7,no id at all,2026-10-03,web\n"
            "b10,nps,6,no date,,web\n"
        ).encode()
    )
    with open_warehouse(config.warehouse) as wh:
        rep = load_export(csv, wh, config)
    assert rep.conflicting_duplicates == 1
    summary = run_enrichment(config)
    assert summary.rows_in == 11 == summary.rows_enriched + summary.rows_quarantined
    with open_warehouse(config.warehouse) as wh:
        enr = wh.read("feedback_enriched").set_index("response_id")
        q = wh.read("quarantine").set_index("response_id")
    assert enr.loc["b1", "is_non_answer"] and enr.loc["b2", "is_non_answer"]
    assert enr.loc["b3", "text_truncated"] and len(enr.loc["b3", "text_redacted"]) <= 5000
    assert "\ufffd" not in enr.loc["b4", "text_redacted"] and "atendimento" in enr.loc["b4", "text_redacted"]
    assert enr.loc["b7", "score"] == 9  # the last version of a repeated response_id wins
    assert enr.loc["b8", "language"] in {"und", "nl", "en"}  # German is not configured: never a crash
    assert q.loc["b5", "reason"] == "score_out_of_range" and q.loc["b6", "reason"] == "missing_score"
    assert q.loc["b9", "reason"] == "unknown_survey_type" and q.loc["b10", "reason"] == "missing_submitted_at"
    assert (q["reason"] == "missing_response_id").sum() == 1


def test_missing_column_names_expected_and_found(tmp_path):
    config = load_config(make_config(tmp_path))
    csv = tmp_path / "x.csv"
    csv.write_text("id,why,score\n1,late,3\n")
    with open_warehouse(config.warehouse) as wh, pytest.raises(SchemaError) as err:
        load_export(csv, wh, config)
    assert "comment" in str(err.value) and "why" in str(err.value)


def test_cli_demo_then_enrich_adds_nothing(tmp_path, capsys):
    from pipeline.cli import main

    cfg = make_config(tmp_path)
    wh = str(tmp_path / "demo.duckdb")
    assert main(["demo", "--config", str(cfg), "--warehouse", wh, "--rows", "300", "--no-prefect"]) == 0
    out = capsys.readouterr().out
    assert "HTML report" in out and "NPS" in out
    assert (tmp_path / "report" / "report.html").exists()
    with open_warehouse(wh) as w:
        n = w.count("feedback_enriched")
        assert w.count("survey_responses") == n + w.count("quarantine")
    assert main(["enrich", "--config", str(cfg), "--warehouse", wh, "--no-prefect"]) == 0
    with open_warehouse(wh) as w:
        assert w.count("feedback_enriched") == n
    assert main(["report", "--config", str(cfg), "--warehouse", wh, "--json", str(tmp_path / "s.json")]) == 0
    assert "overall" in json.loads((tmp_path / "s.json").read_text())
