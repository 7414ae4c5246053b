"""The weekly sentiment retraining from the survey's own scores: thin Prefect wiring over
``pipeline.sentiment.retrain.learn_from_scores``.

With ``sentiment.options.learn_from_scores`` set and enough scored answers stored, a version of
``sentiment.embedding_lr.v1`` is trained on the stored scores (vectors from the embedding cache), gated
against what the nightly run uses today on held-out answers, and promoted into the model store; the
nightly run uses the promoted version from then on and records it on every row. Without the setting
the flow does nothing (and says so).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline.config import EnrichmentConfig, load_config
from pipeline.embed import build_embedder
from pipeline.runs import run_session
from pipeline.sentiment.retrain import learn_from_scores
from pipeline.warehouse import open_warehouse

FLOW_NAME = "retrain-sentiment"


@task(cache_policy=NONE)
def learn(
    config: EnrichmentConfig, wait_s: float, force: bool, max_drop: float, eval_fraction: float
) -> dict[str, Any]:
    """Train, gate and promote (one connection, holding the run lock, recorded in the runs table)."""
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_session(wh, config, FLOW_NAME, wait_s=wait_s) as run,
    ):
        embedder = build_embedder(config.embedder.name, **config.embedder.options)
        result = learn_from_scores(
            wh, config, embedder, force=force, max_drop=max_drop, eval_fraction=eval_fraction
        )
        if result.get("version"):
            run.summary.versions = {"sentiment_model_version": str(result["version"])}
        run.succeed(wh, config)
    return result


@flow(name=FLOW_NAME, log_prints=False)
def retrain_sentiment(
    config_path: str | None = None,
    warehouse: str | None = None,
    force: bool = False,
    max_drop: float = 1.0,
    eval_fraction: float = 0.2,
    wait_for_lock_s: float | None = None,
) -> dict[str, Any]:
    """Learn sentiment from the stored scores, gate and promote.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse.
        force: Promote even when the gate refuses.
        max_drop: The gate's tolerance in points (Spearman with scores, macro F1 on score buckets).
        eval_fraction: Share of the scored answers held out for the gate.
        wait_for_lock_s: How long to wait for a running run; None (a scheduled run) waits
            ``run_lock.wait_minutes``.

    Returns:
        A summary: status (promoted / refused / skipped), rows, versions and both reports.
    """
    logger = get_run_logger()
    config = load_config(config_path, warehouse=warehouse)
    wait_s = config.run_lock.wait_minutes * 60 if wait_for_lock_s is None else wait_for_lock_s
    result = learn(config, wait_s, force, max_drop, eval_fraction)
    logger.info(
        "sentiment retraining: %s (%s)", result["status"], result.get("reason") or result.get("version")
    )
    return result


if __name__ == "__main__":
    retrain_sentiment()
