"""The weekly topic refit: thin Prefect wiring over ``pipeline.runner.refit_topics``.

Fits the configured topic model on the rolling window of stored answers (their vectors come from the
embedding cache), keeps the registry's topic ids, records splits and merges in ``topic_history``,
updates the ``topics`` registry and re-assigns the stored answers of the window to the refitted topics
(from the same cached vectors), so reports over the window agree with the registry. The nightly run
then assigns new answers with the refitted model.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline import runner
from pipeline.config import EnrichmentConfig, load_config

FLOW_NAME = "refit-topics"


@task(cache_policy=NONE)
def refit(config: EnrichmentConfig, wait_s: float) -> dict[str, Any]:
    """Fit, match to the registry, store the model, write registry and history, re-assign the window's
    stored rows (one connection, holding the run lock, recorded in the runs table)."""
    return runner.refit_topics(config, wait_s=wait_s)


@flow(name=FLOW_NAME, log_prints=False)
def refit_topics(
    config_path: str | None = None,
    warehouse: str | None = None,
    window_days: int | None = None,
    wait_for_lock_s: float | None = None,
) -> dict[str, Any]:
    """Refit the topics on the rolling window, keeping stable topic ids.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse (DuckDB path or SQLAlchemy URL).
        window_days: Override of ``topics.window_days``.
        wait_for_lock_s: How long to wait for a running run; None (a scheduled run) waits
            ``run_lock.wait_minutes`` of the config.

    Returns:
        The refit summary (model_version, n_topics, window, outlier_share, events, rows_reassigned,
        rows_topic_changed, seconds).
    """
    logger = get_run_logger()
    config = load_config(config_path, warehouse=warehouse)
    if window_days is not None:
        config.topics.window_days = window_days
    wait_s = config.run_lock.wait_minutes * 60 if wait_for_lock_s is None else wait_for_lock_s
    result = refit(config, wait_s)
    logger.info(
        "topics refit %s: %s topics on %s texts, events %s, %s stored rows re-assigned (%s changed topic)",
        result.get("model_version"),
        result.get("n_topics"),
        result.get("window"),
        result.get("events"),
        result.get("rows_reassigned", 0),
        result.get("rows_topic_changed", 0),
    )
    return result


if __name__ == "__main__":
    refit_topics()
