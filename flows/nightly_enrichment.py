"""The nightly enrichment flow: thin Prefect wiring over ``pipeline.runner``.

Retries only on the tasks that do I/O against the warehouse; writes are idempotent upserts, so a retry
never duplicates rows. The run holds the run lock and is recorded from start to end
(:func:`pipeline.runs.run_session`), exactly as ``--no-prefect`` runs are. DuckDB allows one writing process, so every write goes through this flow's one
warehouse connection.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline import runner
from pipeline.config import EnrichmentConfig, load_config
from pipeline.runs import RunSummary, run_session
from pipeline.source import Validated
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse

FLOW_NAME = "nightly-enrichment"


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def extract(wh: Warehouse, config: EnrichmentConfig) -> Any:
    """Remove what was deleted from the source, then read the pending source rows."""
    removed = runner.remove_deleted(wh, config)
    return runner.extract(wh, config), removed


@task(cache_policy=NONE)
def validate(pending: Any, config: EnrichmentConfig) -> tuple[Validated, list[str]]:
    """Split rows into valid ones and quarantined ones."""
    return runner.validate_rows(pending, config)


@task(cache_policy=NONE)
def enrich(
    wh: Warehouse, config: EnrichmentConfig, validated: Validated, segments: list[str], summary: RunSummary
) -> RunSummary:
    """Prepare, embed once, sentiment, tags, topics; each batch written in one transaction."""
    return runner.enrich_pending(wh, config, validated, segments, summary)


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def record_run(wh: Warehouse, config: EnrichmentConfig, summary: RunSummary, started: Any) -> None:
    """Write the pipeline_runs record (status success)."""
    runner.finish_run(wh, config, summary, FLOW_NAME, started)


@task(cache_policy=NONE)
def alerts(wh: Warehouse, config: EnrichmentConfig) -> int:
    """Emerging-theme alerts over what is stored (a failure is logged; the run stays recorded)."""
    return runner.alerts_after_run(wh, config)


def prefect_server_pid() -> int | None:
    """The pid of the temporary Prefect server this process started, if any (recorded with the run, so
    that the next run can stop it should this process be killed)."""
    try:
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # pragma: no cover - Prefect's layout changed: nothing to record
        return None
    for server in list(getattr(SubprocessASGIServer, "_instances", {}).values()):
        process = getattr(server, "server_process", None)
        if process is not None and process.poll() is None:
            return int(process.pid)
    return None


@flow(name=FLOW_NAME, log_prints=False)
def nightly_enrichment(
    config_path: str | None = None,
    warehouse: str | None = None,
    full: bool = False,
    wait_for_lock_s: float | None = None,
) -> dict[str, Any]:
    """One enrichment run over every pending row.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse (DuckDB path or SQLAlchemy URL).
        full: Kept for compatibility: every run checks every row by its content.
        wait_for_lock_s: How long to wait for a running run; None (a scheduled run) waits
            ``run_lock.wait_minutes`` of the config, a manual run passes 0 to be refused at once.

    Returns:
        The run summary as a dict.
    """
    del full
    logger = get_run_logger()
    config = load_config(config_path, warehouse=warehouse)
    wait_s = config.run_lock.wait_minutes * 60 if wait_for_lock_s is None else wait_for_lock_s
    with (
        open_warehouse(config.warehouse) as wh,
        run_session(wh, config, FLOW_NAME, wait_s=wait_s, prefect_server_pid=prefect_server_pid()) as run,
    ):
        summary = run.summary
        pending, summary.rows_removed = extract(wh, config)
        validated, segments = validate(pending, config)
        summary = enrich(wh, config, validated, segments, summary)
        summary.rows_in = len(pending)
        summary.watermark = runner.new_watermark(pending)
        run.summary = summary
        record_run(wh, config, summary, run.started_at)
        n_alerts = alerts(wh, config)
    logger.info(
        "run %s: %d in, %d enriched, %d quarantined %s",
        summary.run_id,
        summary.rows_in,
        summary.rows_enriched,
        summary.rows_quarantined,
        summary.quarantine_reasons,
    )
    return {
        "run_id": summary.run_id,
        "rows_in": summary.rows_in,
        "rows_enriched": summary.rows_enriched,
        "rows_quarantined": summary.rows_quarantined,
        "rows_removed": summary.rows_removed,
        "quarantine_reasons": summary.quarantine_reasons,
        "versions": summary.versions,
        "timings": summary.timings,
        "alerts": n_alerts,
        "warehouse": config.warehouse,
    }


if __name__ == "__main__":
    nightly_enrichment()
