"""Batches on a Dask cluster (``executor.dask``, ``feedback enrich --dask``): the same tables as in process,
a worker killed mid-run loses and duplicates nothing, and without the setting ``dask`` is never imported.

Real runs as whole processes (the CLI and the Prefect flow), on a small export with the suite's fast
models (the hashing encoder, see ``conftest.write_config``), so each run takes seconds of model time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.distributed import MATH_THREAD_ENV
from pipeline.errors import ConfigError
from pipeline.schema import TABLE_KEYS
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 160
BATCH = 20  # eight pages: a run long enough to kill a worker in the middle of it
TABLES = ("feedback_enriched", "feedback_tags", "feedback_sentences", "quarantine", "topics")
# What differs between two runs of the same rows by design: the run, and when it happened (a topic
# model's version id names its fit by the fit's time; its topics, labels and keywords are compared).
VOLATILE = {"run_id", "enriched_at", "quarantined_at", "created_at", "updated_at"}
VOLATILE |= {"topic_model_version", "model_version"}
RUN_TIMEOUT = 420


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FEEDBACK_FAULT"}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        FEEDBACK_NOW="2026-06-01T00:00:00",
        FEEDBACK_TRACEBACK="1",
        PYTHONUNBUFFERED="1",
    )
    # One math-library thread in every process, as on the workers: a float32 product summed in another
    # order (another thread count) differs in its last bits, which a tag's score can carry past 1e-6.
    env.update(MATH_THREAD_ENV)
    return env


def _setup(tmp: Path) -> tuple[Path, Path]:
    from pipeline.sample import generate_survey, write_export

    tmp.mkdir(parents=True, exist_ok=True)
    from datetime import datetime

    export = write_export(
        generate_survey(n=N_ROWS, seed=11, end=datetime(2026, 5, 31)), tmp / "export.parquet"
    )
    return write_config(tmp, str(tmp / "wh.duckdb"), batch_size=BATCH), export


def _enrich(cfg: Path, export: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "enrich", "--config", str(cfg), "--source", str(export)]
    return subprocess.Popen(
        [*cmd, *extra], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"enrich did not finish in {RUN_TIMEOUT} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def _tables(cfg: Path) -> dict[str, pd.DataFrame]:
    from pipeline.warehouse import open_warehouse

    config = load_config(cfg)
    with open_warehouse(config.warehouse) as wh:
        out = {}
        for table in TABLES:
            df = wh.read(table) if wh.table_exists(table) else pd.DataFrame()
            keys = TABLE_KEYS[table]
            df = df.drop(columns=[c for c in df.columns if c in VOLATILE])
            out[table] = df.sort_values(keys).reset_index(drop=True) if len(df) else df
        return out


def _same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    """Identical labels, tags and texts; float scores within 1e-6."""
    for table in TABLES:
        a, b = left[table], right[table]
        assert list(a.columns) == list(b.columns), table
        assert len(a) == len(b), f"{table}: {len(a)} rows vs {len(b)}"
        keys = TABLE_KEYS[table]
        assert not a.duplicated(keys).any() and not b.duplicated(keys).any(), f"{table}: a key twice"
        for col in a.columns:
            x, y = a[col], b[col]
            if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
                np.testing.assert_allclose(x.to_numpy(), y.to_numpy(), atol=1e-6, err_msg=f"{table}.{col}")
            else:
                xs = [list(v) if isinstance(v, list | np.ndarray) else v for v in x]
                ys = [list(v) if isinstance(v, list | np.ndarray) else v for v in y]
                assert [None if pd.isna(v) else v for v in map(_scalar, xs)] == [
                    None if pd.isna(v) else v for v in map(_scalar, ys)
                ], f"{table}.{col} differs"


def _scalar(v: object) -> object:
    return tuple(v) if isinstance(v, list) else v


NO_DASK_RUN = """
import json, sys
from flows.nightly_enrichment import nightly_enrichment
out = nightly_enrichment(config_path=sys.argv[1], wait_for_lock_s=0)
mods = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed", "prefect_dask"))
print("RESULT " + json.dumps({"rows_enriched": out["rows_enriched"], "dask_modules": mods}))
"""


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """The tables of an in-process Prefect run (no executor); asserts ``dask`` was never imported."""
    tmp = tmp_path_factory.mktemp("local")
    cfg, export = _setup(tmp)
    _finish(_enrich(cfg, export, "--no-prefect"))  # loads the export (and runs once without Prefect)
    reference = _tables(cfg)
    # The same rows through the Prefect flow, in process, on a fresh warehouse: the flow's path without
    # executor.dask must not import dask at all.
    cfg2, export2 = _setup(tmp / "flow")
    load = subprocess.run(
        [sys.executable, "-c", _LOAD_ONLY, str(cfg2), str(export2)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert load.returncode == 0, load.stderr[-3000:]
    run = subprocess.run(
        [sys.executable, "-c", NO_DASK_RUN, str(cfg2)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["dask_modules"] == [], f"dask imported without executor.dask: {result['dask_modules']}"
    assert result["rows_enriched"] > 0
    _same_tables(reference, _tables(cfg2))  # in-process Prefect == --no-prefect
    return reference


_LOAD_ONLY = """
import sys
from pipeline.config import load_config
from pipeline.ingest.load import load_export
from pipeline.warehouse import open_warehouse
config = load_config(sys.argv[1])
with open_warehouse(config.warehouse, config=config) as wh:
    load_export(sys.argv[2], wh, config)
"""


def test_config_checks_the_executor(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, str(tmp_path / "wh.duckdb"), executor={"dask": {"address": "local:0"}})
    with pytest.raises(ConfigError, match="local:N"):
        load_config(cfg)
    cfg = write_config(tmp_path, str(tmp_path / "wh.duckdb"), executor={"dask": {"address": "my-cluster"}})
    with pytest.raises(ConfigError, match="tcp://"):
        load_config(cfg)
    cfg = write_config(
        tmp_path,
        str(tmp_path / "wh.duckdb"),
        executor={"dask": {"address": "local:2", "batches_in_flight": 0}},
    )
    with pytest.raises(ConfigError, match="batches_in_flight"):
        load_config(cfg)
    cfg = write_config(
        tmp_path, str(tmp_path / "wh.duckdb"), executor={"dask": {"address": "tcp://10.0.0.5:8786"}}
    )
    section = load_config(cfg).executor.dask
    assert section is not None and section.address == "tcp://10.0.0.5:8786" and section.batches_in_flight >= 1
    assert load_config(write_config(tmp_path, str(tmp_path / "wh.duckdb"))).executor.dask is None


def test_dask_with_no_prefect_is_refused(tmp_path: Path) -> None:
    cfg, export = _setup(tmp_path)
    proc = _enrich(cfg, export, "--no-prefect", "--dask", "local:2")
    out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 2 and "drop --no-prefect" in out, out[-2000:]


def test_local_cluster_gives_the_same_tables(tmp_path: Path, local_reference: dict) -> None:
    cfg, export = _setup(tmp_path)
    out = _finish(_enrich(cfg, export, "--dask", "local:2"))
    assert "enriched" in out
    _same_tables(local_reference, _tables(cfg))


def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path, local_reference: dict) -> None:
    from distributed import Client, LocalCluster

    cfg, export = _setup(tmp_path)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        proc = _enrich(cfg, export, "--dask", cluster.scheduler_address)
        pids = client.run(os.getpid)  # worker address -> pid
        killed = None
        deadline = time.monotonic() + RUN_TIMEOUT
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:  # a worker holds a batch: kill its process (its nanny starts a new one)
                worker = sorted(busy)[0]
                os.kill(pids[worker], signal.SIGKILL)
                killed = pids[worker]
            time.sleep(0.02)
        out = _finish(proc)
        assert killed is not None, "no batch was ever seen on a worker"
        alive = client.run(os.getpid)
        assert killed not in alive.values()
    assert "enriched" in out
    got = _tables(cfg)
    _same_tables(local_reference, got)  # every row once, with the same content
    config = load_config(cfg)
    from pipeline.warehouse import open_warehouse

    with open_warehouse(config.warehouse) as wh:
        runs = wh.read("pipeline_runs")
    last = runs.sort_values("started_at").iloc[-1]
    assert last["status"] == "success"
    assert int(last["rows_in"]) == int(last["rows_enriched"]) + int(last["rows_quarantined"])
    assert int(last["rows_in"]) == len(got["feedback_enriched"]) + len(got["quarantine"])
