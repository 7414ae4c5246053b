"""The weekly tagger retraining: thin Prefect wiring over ``pipeline.tagging``.

Load the labels (warehouse table ``tag_labels`` and optional files), hold out an evaluation set, train a
new version, evaluate it and the promoted version on the same rows, promote it when the gate allows,
then re-tag every stored answer from the cached embeddings (nothing is encoded again). The nightly run
uses the promoted version from then on and records it on every row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline.config import EnrichmentConfig, load_config
from pipeline.embed import Embedder, build_embedder
from pipeline.embed.response import answer_embedder
from pipeline.model_store import ModelStore
from pipeline.runs import run_session
from pipeline.tagging.data import LabelledData
from pipeline.tagging.evaluation import compare_and_promote
from pipeline.tagging.lifecycle import encoder_spec, load_tagger, save_version, train_tagger
from pipeline.tagging.retag import retag_stored
from pipeline.tagging.retrain import (
    MIN_LABELS,
    load_training_labels,
    self_train_window,
    split_labels,
    tagger_store,
)
from pipeline.tagging.taxonomy import load_taxonomy
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse

FLOW_NAME = "retrain-tagger"


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def load_labels(
    wh: Warehouse, config: EnrichmentConfig, embedder: Embedder, files: list[str] | None
) -> LabelledData:
    """Labelled rows with embeddings (stored answers' vectors come from the cache)."""
    return load_training_labels(wh, config, embedder, files)


@task(cache_policy=NONE)
def train(
    config: EnrichmentConfig,
    encoder: Embedder,
    data: LabelledData,
    folder: str,
    params: dict[str, Any] | None,
    fine_tune: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Train a version on the training split and write it under ``folder`` (the store takes it in when
    it is promoted)."""
    embedder = answer_embedder(encoder, config)
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    model, info = train_tagger(data, embedder, taxonomy=taxonomy, params=params, fine_tune=fine_tune)
    version = getattr(model, "version_id_", model.version)
    out = save_version(
        model,
        f"{folder}/{version}",
        info,
        encoder_spec(config.embedder.name, config.embedder.options, embedder),
    )
    return str(out), {
        "version": version,
        "mode": info.mode,
        "cv_metrics": getattr(model, "cv_report_", None),
    }


@task(cache_policy=NONE)
def gate_and_promote(
    candidate: str, eval_data: LabelledData, store: ModelStore, force: bool, max_drop: float
) -> dict[str, Any]:
    """Store the candidate (a refused one stays listed, promotable with --force), evaluate it and the
    promoted version on the same rows; promote when the gate allows."""
    store.add(candidate)
    decision, reports = compare_and_promote(candidate, eval_data, store, force=force, max_drop=max_drop)
    return {
        "decision": decision.as_dict(),
        "candidate_micro_f1": reports["candidate"].get("micro_f1"),
        "current_micro_f1": (reports.get("current") or {}).get("micro_f1"),
    }


@task(cache_policy=NONE)
def self_train(
    wh: Warehouse,
    config: EnrichmentConfig,
    encoder: Embedder,
    store: ModelStore,
    force: bool,
    max_drop: float,
) -> dict[str, Any]:
    """No labels yet: a self-trained version from the stored window, through the label-free gate."""
    return self_train_window(wh, config, encoder, store, force=force, max_drop=max_drop)


@task(retries=2, retry_delay_seconds=5, cache_policy=NONE)
def retag(wh: Warehouse, config: EnrichmentConfig, embedder: Embedder, store: ModelStore) -> dict[str, Any]:
    """Re-tag the stored answers with the promoted version, from cached embeddings only."""
    model = load_tagger(store.promoted_path(), embedder)
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    parent_of = model.parent_of if hasattr(model, "parent_of") else taxonomy.parent_of
    return retag_stored(wh, config, model, embedder.model_id, parent_of=parent_of).__dict__


@flow(name=FLOW_NAME, log_prints=False)
def retrain_tagger(
    config_path: str | None = None,
    warehouse: str | None = None,
    data: list[str] | None = None,
    registry: str | None = None,
    eval_fraction: float = 0.2,
    force: bool = False,
    max_drop: float = 1.0,
    params: dict[str, Any] | None = None,
    fine_tune: dict[str, Any] | None = None,
    retag_stored_answers: bool = True,
    seed: int = 0,
    wait_for_lock_s: float | None = None,
) -> dict[str, Any]:
    """Retrain the tagger from the labels, gate, promote and re-tag. With fewer than ``MIN_LABELS``
    labels, self-train on the stored window instead (mode ``self-trained``, label-free gate), unless
    a version trained on labels is already promoted.

    Args:
        config_path: The enrichment YAML (default: configs/enrichment.yaml).
        warehouse: Override of the config's warehouse.
        data: Extra labelled files (CSV/Parquet) on top of the table ``tag_labels``.
        registry: A registry folder (default: ``tagger.model_dir`` when it is a registry, else the config's
            model store).
        eval_fraction: Share of the labels held out for the gate.
        force: Promote even when the candidate scores more than ``max_drop`` below the promoted version.
        max_drop: The gate's tolerance in points of micro F1 (1.0 = 0.01), as ``feedback tagger promote``.
        params: Hyper-parameters of the trained tagger.
        fine_tune: SetFit-style fine-tuning settings (``{}`` for the defaults; None: frozen encoder). A
            fine-tuned version embeds texts itself, so re-tagging encodes the stored answers again.
        retag_stored_answers: Re-tag the stored answers after a promotion.
        seed: Seed of the evaluation split.
        wait_for_lock_s: How long to wait for a running run (the retrain holds the run lock and is
            recorded in the runs table); None (a scheduled run) waits ``run_lock.wait_minutes``.

    Returns:
        A summary: status (promoted / refused / skipped), versions, scores, re-tagging counts.
    """
    logger = get_run_logger()
    config = load_config(config_path, warehouse=warehouse)
    wait_s = config.run_lock.wait_minutes * 60 if wait_for_lock_s is None else wait_for_lock_s
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_session(wh, config, FLOW_NAME, wait_s=wait_s) as run,
    ):
        # One encoder for the whole flow (loading a model is seconds; it used to happen three times).
        encoder = build_embedder(config.embedder.name, **config.embedder.options)
        store = tagger_store(config, wh, registry)
        reg = store.describe()
        labels = load_labels(wh, config, encoder, data)
        if len(labels) < MIN_LABELS:
            logger.warning(
                "only %d labelled rows (fewer than %d): self-training on the stored window",
                len(labels),
                MIN_LABELS,
            )
            result = {**self_train(wh, config, encoder, store, force, max_drop), "labels": len(labels)}
            if result["status"] == "promoted" and retag_stored_answers:
                result["retag"] = retag(wh, config, encoder, store)
            if result.get("version"):
                run.summary.versions = {"tagger_version": str(result["version"])}
            run.succeed(wh, config)
            return {**result, "registry": reg}
        train_part, eval_part = split_labels(labels, eval_fraction, seed)
        candidate, trained = train(
            config, encoder, train_part, str(config.state_dir / "candidates"), params, fine_tune
        )
        gated = gate_and_promote(candidate, eval_part, store, force, max_drop)
        result: dict[str, Any] = {
            "status": "promoted" if gated["decision"]["promoted"] else "refused",
            "labels": len(labels),
            "train_rows": len(train_part),
            "eval_rows": len(eval_part),
            "candidate": candidate,
            "registry": reg,
            **trained,
            **gated,
        }
        if gated["decision"]["promoted"] and retag_stored_answers:
            result["retag"] = retag(wh, config, encoder, store)
        run.summary.versions = {"tagger_version": str(trained["version"])}
        run.succeed(wh, config)
    logger.info(
        "tagger %s %s: micro F1 %.3f vs current %s (%s)",
        trained["version"],
        result["status"],
        gated["candidate_micro_f1"],
        gated["current_micro_f1"],
        gated["decision"]["reason"],
    )
    return result


if __name__ == "__main__":
    retrain_tagger()
