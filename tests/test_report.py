"""The HTML report, its JSON summary and the terminal summary: every number is the analysis layer's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline import analysis as an
from pipeline.report import build_summary, format_summary, write_report
from tests.test_analysis import BACKENDS, CONFIG, load, open_test_warehouse, tiny


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """DuckDB, and PostgreSQL when ``FEEDBACK_TEST_PG_URL`` is set."""
    return request


def _data(kind: pytest.FixtureRequest, tmp_path: Path, df: pd.DataFrame):
    with open_test_warehouse(kind, tmp_path / "r.duckdb") as wh:
        load(wh, df)
        an.add_candidates(wh, config=CONFIG)
        return (
            build_summary(wh, CONFIG),
            an.score_summary(wh, config=CONFIG),
            an.theme_impact(wh, config=CONFIG),
        )


def test_report_numbers_are_the_analysis_layers_and_the_page_is_escaped(kind, tmp_path: Path) -> None:
    df = tiny()
    df.loc[8, "text_redacted"] = "<script>alert('x')</script> & the bill"
    df.at[7, "tags"] = ["billing", "<b>speed</b>"]
    data, score, impact = _data(kind, tmp_path, df)
    lineage = {"run_id": "run-<42>", "tagger_version": "tagger.zeroshot.v1"}
    path = write_report(data, tmp_path / "out", title="Q1 <NPS>", lineage=lineage, config=CONFIG)
    html = path.read_text(encoding="utf-8")
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)) >= 2
    assert "<script" not in html.lower() and "&lt;b&gt;speed&lt;/b&gt;" in html
    assert "<title>Q1 &lt;NPS&gt;</title>" in html and "run-&lt;42&gt;" in html
    assert "http://" not in html and "https://" not in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    # the same numbers as the analysis layer's
    assert summary["overall"]["score"] == score.score and summary["overall"]["high"] == pytest.approx(
        score.high
    )
    top = summary["theme_impact"][0]
    row = impact.iloc[0]
    assert top["tag"] == row["tag"] == "billing"
    assert top["impact"] == pytest.approx(row["impact"]) == pytest.approx(-300 / 7)
    assert (top["impact_low"], top["impact_high"]) == pytest.approx((row["impact_low"], row["impact_high"]))
    assert f"{row['impact']:+.1f}" in html and f"[{row['impact_low']:.1f}, {row['impact_high']:.1f}]" in html
    text = format_summary(data)
    assert f"{row['impact']:+.1f}" in text and f"[{score.low:.1f}, {score.high:.1f}]" in text
    assert summary["followups_open"] == 7 and "answer 8" not in json.dumps(summary)


def test_report_on_an_empty_warehouse_says_so(kind, tmp_path: Path) -> None:
    data, _, _ = _data(kind, tmp_path, tiny().head(0))
    path = write_report(data, tmp_path)
    assert "No responses" in path.read_text(encoding="utf-8")
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert (
        summary["n_responses"] == 0 and summary["theme_impact"] == [] and summary["overall"]["score"] is None
    )
    assert "No responses to analyse" in format_summary(data)


def test_report_without_tags_says_so(kind, tmp_path: Path) -> None:
    data, _, _ = _data(kind, tmp_path, tiny().assign(tags=[[] for _ in range(10)]))
    html = write_report(data, tmp_path).read_text(encoding="utf-8")
    assert "No themes to rank" in html
