"""The nightly enrichment flow: thin Prefect wiring over ``pipeline.runner``.

Retries only on the tasks that do I/O against the warehouse; writes are idempotent upserts, so a retry
never duplicates rows. DuckDB allows one writing process, so every write goes through this flow's one
warehouse connection.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline import runner
from pipeline.config import EnrichmentConfig, load_config
from pipeline.source import Validated
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse

FLOW_NAME = "nightly-enrichment"


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def extract(wh: Warehouse, config: EnrichmentConfig, full: bool) -> tuple[Any, Any]:
    """Read new source rows and the previous watermark."""
    return runner.extract(wh, config, full=full)


@task(cache_policy=NONE)
def validate(pending: Any, config: EnrichmentConfig) -> tuple[Validated, list[str]]:
    """Split rows into valid ones and quarantined ones."""
    return runner.validate_rows(pending, config)


@task(cache_policy=NONE)
def enrich(
    wh: Warehouse, config: EnrichmentConfig, validated: Validated, segments: list[str], run_id: str
) -> runner.RunSummary:
    """Prepare, embed once, sentiment, tags, topics; write each batch (idempotent upserts)."""
    return runner.enrich_pending(wh, config, validated, segments, run_id)


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def record_run(wh: Warehouse, config: EnrichmentConfig, summary: runner.RunSummary, started: Any) -> None:
    """Write the pipeline_runs record."""
    runner.write_run(wh, config, summary, FLOW_NAME, started)


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def alerts(wh: Warehouse, config: EnrichmentConfig) -> int:
    """Emerging-theme alerts over what is stored (upserts into the alerts table)."""
    return runner.update_alerts(wh, config)


@flow(name=FLOW_NAME, log_prints=False)
def nightly_enrichment(
    config_path: str | None = None, warehouse: str | None = None, full: bool = False
) -> dict[str, Any]:
    """One incremental enrichment run.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse (DuckDB path or SQLAlchemy URL).
        full: Ignore the watermark (rows already enriched or quarantined are still skipped).

    Returns:
        The run summary as a dict.
    """
    logger = get_run_logger()
    config = load_config(config_path, warehouse=warehouse)
    started = runner.utcnow()
    run_id = runner.new_run_id()
    with open_warehouse(config.warehouse) as wh:
        pending, previous = extract(wh, config, full)
        validated, segments = validate(pending, config)
        summary = enrich(wh, config, validated, segments, run_id)
        summary.rows_in = len(pending)
        summary.watermark = runner.new_watermark(pending, previous)
        summary.check()
        record_run(wh, config, summary, started)
        n_alerts = alerts(wh, config)
    logger.info(
        "run %s: %d in, %d enriched, %d quarantined %s",
        run_id,
        summary.rows_in,
        summary.rows_enriched,
        summary.rows_quarantined,
        summary.quarantine_reasons,
    )
    return {
        "run_id": run_id,
        "rows_in": summary.rows_in,
        "rows_enriched": summary.rows_enriched,
        "rows_quarantined": summary.rows_quarantined,
        "quarantine_reasons": summary.quarantine_reasons,
        "versions": summary.versions,
        "timings": summary.timings,
        "alerts": n_alerts,
        "warehouse": config.warehouse,
    }


if __name__ == "__main__":
    nightly_enrichment()
