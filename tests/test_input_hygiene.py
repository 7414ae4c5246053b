"""Input and privacy findings: each of these failed on the release before (see the issue's probe)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.errors import FeedbackError, SchemaError
from pipeline.ingest.load import load_export
from pipeline.ingest.source import conform, validate
from pipeline.runner import run_enrichment
from pipeline.warehouse import open_warehouse
from tests.conftest import pg_schema, write_config

ROOT = Path(__file__).resolve().parent.parent


def make_config(tmp: Path, warehouse: str, **extra: object) -> Path:
    """A fast config without topics (these tests are about rows, not themes)."""
    return write_config(tmp, warehouse, **{"topics": {"name": "topics.none.v1"}, **extra})


def export(tmp: Path, **columns: list) -> Path:
    base = {
        "response_id": ["r1", "r2", "r3"],
        "survey_type": ["nps", "nps", "nps"],
        "score": [9, 2, 11],
        "comment": ["Great\x00 service, call me on +44 7911 123456", "Mail me at ana.silva@example.com", "x"],
        "submitted_at": ["2026-02-01", "2026-02-02", "2026-02-03"],
        "Customer Segment": ["smb\x00", "enterprise", "smb"],
    }
    base.update(columns)
    path = tmp / "export.parquet"
    pd.DataFrame(base).to_parquet(path)
    return path


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        yield str(tmp_path / "wh.duckdb")
        return
    url = request.getfixturevalue("pg_url")
    with pg_schema(url, "hyg") as schema:
        import sqlalchemy as sa

        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def test_nul_bytes_odd_column_names_and_raw_pii_are_handled(tmp_path, warehouse):
    config = load_config(make_config(tmp_path, warehouse))
    with open_warehouse(warehouse) as wh:
        report = load_export(export(tmp_path), wh, config)
    assert report.rows_loaded == 3 and report.renamed == {"Customer Segment": "customer_segment"}
    summary = run_enrichment(config)
    assert summary.rows_enriched == 2 and summary.rows_quarantined == 1
    assert json.loads(summary.column_names) == {"Customer Segment": "customer_segment"}
    with open_warehouse(warehouse) as wh:
        source = wh.read("survey_responses")
        enriched = wh.read("feedback_enriched")
        raw = wh.read("quarantine")["raw"].iloc[0]
        runs = wh.read("pipeline_runs")
    assert not any("\x00" in str(v) for v in source.to_numpy().ravel())
    assert sorted(enriched["customer_segment"]) == ["enterprise", "smb"]
    assert json.loads(runs["column_names"].iloc[0]) == {"Customer Segment": "customer_segment"}
    assert "x" in json.loads(raw)["comment"]  # the quarantined row is kept ...
    bad = export(tmp_path, comment=["a", "b", "Ring +44 7911 123456 or bob@example.com"])
    with open_warehouse(warehouse) as wh:
        load_export(bad, wh, config)
    run_enrichment(config)
    with open_warehouse(warehouse) as wh:
        raw = wh.read("quarantine")["raw"].iloc[0]
    assert "7911" not in raw and "bob@example.com" not in raw and "[EMAIL]" in raw  # ... redacted


def test_columns_that_collide_after_normalising_are_named(tmp_path):
    df = pd.DataFrame(
        {
            "response_id": ["r1"],
            "survey_type": ["nps"],
            "score": [9],
            "comment": ["ok"],
            "submitted_at": ["2026-01-01"],
            "Plan Type": ["a"],
            "plan_type": ["b"],
        }
    )
    with pytest.raises(SchemaError, match="'Plan Type' and 'plan_type'|'plan_type' and 'Plan Type'"):
        conform(df)


def test_list_cells_are_refused_and_fractional_nps_is_quarantined():
    df = pd.DataFrame(
        {
            "response_id": ["r1", "r2"],
            "survey_type": ["nps", "csat"],
            "score": [7.5, 4.5],
            "comment": ["ok", "ok"],
            "submitted_at": ["2026-01-01", "2026-01-01"],
        }
    )
    out = validate(conform(df))
    assert out.quarantined["reason"].tolist() == ["score_not_whole"]
    assert out.valid["response_id"].tolist() == ["r2"]  # CSAT halves are allowed by default
    lists = df.assign(comment=[["late", "delivery"], ["ok"]])
    with pytest.raises(SchemaError, match="'comment' holds list values"):
        conform(lists)


def test_personal_data_columns_are_dropped_or_hashed(tmp_path):
    wh_path = str(tmp_path / "wh.duckdb")
    cfg = make_config(
        tmp_path,
        wh_path,
        source={"customer_id": "customer_id", "personal_data": {"email": "drop", "phone": "hash"}},
    )
    config = load_config(cfg)
    path = export(
        tmp_path,
        customer_id=["c1", "c2", "c3"],
        email=["a@x.org", "b@x.org", "c@x.org"],
        phone=["+33 6 12 34 56 78", "+33 6 12 34 56 79", None],
    )
    with open_warehouse(wh_path) as wh:
        load_export(path, wh, config)
    run_enrichment(config)
    with open_warehouse(wh_path) as wh:
        enriched = wh.read("feedback_enriched")
    assert "email" not in enriched.columns and enriched["customer_id"].tolist() == ["c1", "c2"]
    assert all(v.startswith("h:") and "12 34" not in v for v in enriched["phone"])


def cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_corrupt_warehouse_is_bad_input_and_nothing_is_loaded(tmp_path):
    bad = tmp_path / "random.duckdb"
    bad.write_bytes(os.urandom(20000))
    before = bad.read_bytes()
    cfg = make_config(tmp_path, str(bad))
    result = cli("enrich", "--config", str(cfg), "--source", str(export(tmp_path)), "--no-prefect")
    assert result.returncode == 2 and "not a valid DuckDB database" in result.stderr
    assert bad.read_bytes() == before
    assert cli("report", "--config", str(cfg)).returncode == 2
    with pytest.raises(FeedbackError):
        open_warehouse(str(bad))


def _can_mount_read_only(tmp: Path) -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {tmp} {tmp} && mount -o remount,ro,bind {tmp} {tmp}"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_report_and_check_work_on_a_read_only_warehouse(tmp_path):
    """The warehouse's folder is mounted read-only (in a private mount namespace of the command)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not _can_mount_read_only(tmp_path):
        pytest.skip("needs root and mount namespaces to make a read-only file system")
    data = tmp_path / "data"
    data.mkdir()
    wh_path = data / "wh.duckdb"
    cfg = make_config(tmp_path, str(wh_path), report_dir=str(tmp_path / "out"))
    config = load_config(cfg)
    with open_warehouse(str(wh_path)) as wh:
        load_export(export(tmp_path), wh, config)
    run_enrichment(config)
    before = wh_path.read_bytes()
    for command in ("check", "report"):
        inner = " ".join(
            [sys.executable, "-m", "pipeline.cli", command, "--config", str(cfg)]
            + (["--out", str(tmp_path / "out")] if command == "report" else [])
        )
        result = subprocess.run(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                f"mount --bind {data} {data} && mount -o remount,ro,bind {data} {data} "
                f"&& touch {data}/probe 2>/dev/null && exit 99; exec {inner}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
    assert wh_path.read_bytes() == before
    assert (tmp_path / "out" / "report.html").exists()
