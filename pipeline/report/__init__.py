"""The root-cause report: ``report.html`` (self-contained, plots embedded), ``summary.json``, and the
terminal summary, all read from the analysis layer (:mod:`pipeline.analysis`) only.

* :func:`build_summary` -> :class:`ReportData` (every number, computed by the analysis layer)
* :func:`write_report` writes the HTML page and the JSON; :func:`format_summary` the terminal text
* :func:`build_report` does all of it for a config (``feedback report``)
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import EnrichmentConfig
from pipeline.report.summary import ReportData, build_summary, jsonable, records
from pipeline.report.terminal import format_summary

__all__ = [
    "ReportData",
    "build_report",
    "build_summary",
    "format_summary",
    "jsonable",
    "records",
    "write_report",
]

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Customer feedback root-cause report"
LINEAGE_KEYS = (
    "run_id",
    "embedder_id",
    "sentiment_model_version",
    "sentiment_source",
    "tagger_version",
    "taxonomy_version",
    "topic_model_version",
)


def _write_atomic(path: Path, text: str) -> None:
    # Write then rename, so a reader (or a crashed run) never sees half a report.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(
    data: ReportData,
    out_dir: Path | str,
    title: str = DEFAULT_TITLE,
    lineage: dict[str, str] | None = None,
    config: EnrichmentConfig | None = None,
) -> Path:
    """Write ``report.html`` and ``summary.json`` into ``out_dir`` (created; files replaced).

    Returns:
        The path of ``report.html``.
    """
    from pipeline.report.html import render

    if not isinstance(data, ReportData):
        raise TypeError(
            f"write_report() expects ReportData, got {type(data).__name__}: build it with "
            "pipeline.report.build_summary(wh, config)."
        )
    a = (config or EnrichmentConfig()).analysis
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    lineage = dict(lineage or {})
    for i, note in enumerate(data.notes):
        lineage[f"note {i + 1}"] = note
    html = render(
        data, title, lineage, generated_at, confidence=a.confidence, small_n=a.small_sample, fdr=a.fdr
    )
    html_path = out / "report.html"
    _write_atomic(html_path, html)
    payload = {"title": title, "generated_at": generated_at, "lineage": jsonable(lineage), **data.to_dict()}
    _write_atomic(out / "summary.json", json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False))
    log.info("report: wrote %s and summary.json (%d responses)", html_path, data.overview.n_responses)
    return html_path


def build_report(config: EnrichmentConfig, out_dir: str | Path | None = None) -> tuple[ReportData, Path]:
    """Check the warehouse, read the report's numbers from the analysis layer and write the report."""
    from pipeline.check import require_consistent
    from pipeline.warehouse.reading import open_for_reading

    t = config.tables
    with open_for_reading(config.warehouse) as wh:
        # A report over a warehouse with lost or half-written rows would show wrong numbers as if right.
        require_consistent(wh, config)
        lineage: dict[str, str] = {"warehouse": wh.describe()}
        if wh.table_exists(t.runs):
            cols = ", ".join(wh._quote(c) for c in LINEAGE_KEYS)
            last = wh.sql(f"SELECT {cols} FROM {wh._qualified(t.runs)} ORDER BY started_at DESC LIMIT 1")
            if len(last):
                lineage |= {k: str(last[k].iloc[0]) for k in LINEAGE_KEYS}
        data = build_summary(wh, config)
    return data, write_report(data, Path(out_dir or config.report_dir), lineage=lineage, config=config)
