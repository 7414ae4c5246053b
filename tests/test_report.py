"""The HTML report and its JSON summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from pipeline import analysis as an
from pipeline.report import write_report
from tests.test_analysis import tiny


def test_report_is_self_contained_escaped_and_has_json(tmp_path: Path) -> None:
    df = tiny()
    df.loc[8, "text_redacted"] = "<script>alert('x')</script> & the bill"
    df.loc[7, "tags"] = ["billing", "<b>speed</b>"]
    df["comment"] = "RAW-UNREDACTED jane@example.com"  # the raw column must never reach the page
    s = an.summarise(df, min_count=1, segment_min_count=5)
    lineage = {"run_id": "run-<42>", "tagger_version": "tagger.zeroshot.v1"}
    path = write_report(s, tmp_path / "out", title="Q1 <NPS>", lineage=lineage)

    assert path == tmp_path / "out" / "report.html"
    html = path.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in html
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)) >= 3
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; the bill" in html
    assert "<script" not in html.lower()
    assert "&lt;b&gt;speed&lt;/b&gt;" in html and "<b>speed" not in html
    assert "RAW-UNREDACTED" not in html
    assert "<title>Q1 &lt;NPS&gt;</title>" in html
    assert "run-&lt;42&gt;" in html and "tagger.zeroshot.v1" in html
    assert "billing" in html and "-42.9" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere

    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["overall"]["score"] == 0.0
    assert summary["score_type"] == "nps"
    assert summary["theme_impact"][0]["tag"] == "billing"
    assert abs(summary["theme_impact"][0]["nps_impact"] + 300 / 7) < 1e-9
    assert {r["value"] for r in summary["segments"]} == {"web", "app"}
    assert summary["lineage"]["run_id"] == "run-<42>"
    assert "close_the_loop" not in summary and summary["close_the_loop_count"] == 3
    assert "RAW-UNREDACTED" not in json.dumps(summary)


def test_report_on_empty_input_says_so(tmp_path: Path) -> None:
    path = write_report(an.summarise(pd.DataFrame()), tmp_path)
    html = path.read_text(encoding="utf-8")
    assert "No responses" in html
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_responses"] == 0 and summary["theme_impact"] == []
    assert summary["overall"]["score"] is None  # NaN is written as null, never as invalid JSON


def test_report_without_tags_says_so(tmp_path: Path) -> None:
    df = tiny().assign(tags=[[] for _ in range(10)])
    path = write_report(an.summarise(df), tmp_path, lineage=None)
    html = path.read_text(encoding="utf-8")
    assert "No themes to rank" in html
    assert "No detractor with negative sentiment and a theme" in html
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["theme_impact"] == []
