"""The nightly enrichment flow: thin Prefect wiring over ``pipeline.runner``.

The flow runs :func:`pipeline.runner.run_steps`, the one run path, with each stage (extract, validate,
prepare, embed, topics, score + write, record, alerts) as a Prefect task; ``--no-prefect`` runs the same
function with plain calls. Retries only on the stages that read, or write idempotently. The run holds
the run lock and is recorded from start to end (:func:`pipeline.runs.run_session`). DuckDB allows one
writing process, so every write goes through this flow's one warehouse connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from flows.dask_pages import distributed_pages, with_dask
from pipeline import runner
from pipeline.config import load_config
from pipeline.runs import run_session
from pipeline.warehouse import open_warehouse

FLOW_NAME = "nightly-enrichment"


def as_task(fn: Callable[..., Any], retries: int = 0) -> Callable[..., Any]:
    """A run stage as a Prefect task named after it (retries only where the runner asks for them: the
    stages that only read, or write idempotently). No DataFrame ever enters a cache key."""
    return task(
        fn,
        name={"validate_rows": "validate", "finish_run": "record", "alerts_after_run": "alerts"}.get(
            fn.__name__, fn.__name__.removesuffix("_stage")
        ),
        retries=retries,
        retry_delay_seconds=5 if retries else 0,
        cache_policy=NONE,
    )


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
    dask: str | None = None,
) -> dict[str, Any]:
    """One enrichment run over every pending row.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse (DuckDB path or SQLAlchemy URL).
        full: Kept for compatibility: every run checks every row by its content.
        wait_for_lock_s: How long to wait for a running run; None (a scheduled run) waits
            ``run_lock.wait_minutes`` of the config, a manual run passes 0 to be refused at once.
        dask: A Dask scheduler address or ``local:N``, overriding the config's ``executor.dask.address``
            (the batches then run on that cluster: :mod:`pipeline.distributed`).

    Returns:
        The run summary as a dict.
    """
    del full
    logger = get_run_logger()
    config = with_dask(load_config(config_path, warehouse=warehouse), dask)
    wait_s = config.run_lock.wait_minutes * 60 if wait_for_lock_s is None else wait_for_lock_s
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_session(wh, config, FLOW_NAME, wait_s=wait_s, prefect_server_pid=prefect_server_pid()) as run,
    ):
        # The same stages in the same order as `--no-prefect` (pipeline.runner.run_steps), each a task.
        summary = runner.run_steps(wh, run, config, as_task=as_task, distribute=distributed_pages(config))
    if config.status.notification_block:
        _notify_when_sick(config, logger)
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
        "alerts": summary.alerts,
        "warehouse": config.warehouse,
    }


def _notify_when_sick(config: Any, logger: Any) -> None:
    """Send ``feedback status``'s failures through the configured Prefect notification block."""
    from pipeline.analysis.health import notify, pipeline_status

    try:
        with open_warehouse(config.warehouse, config=config) as wh:
            report = pipeline_status(wh, config=config)
        if not report.ok:
            notify(report, config.status.notification_block)
    except Exception:  # a notification must not fail the recorded run
        logger.exception("status notification through %s failed", config.status.notification_block)


if __name__ == "__main__":
    nightly_enrichment()
