"""Prefect wiring of :mod:`pipeline.distributed`: a run's pages on a Dask cluster via ``DaskTaskRunner``.

:func:`distributed_pages` returns None when the config has no ``executor.dask`` (then nothing here
imports ``dask`` or ``prefect_dask``); otherwise the function :func:`pipeline.runner.run_steps` calls
instead of its in-process page loop. Each page's prepare and embed + score steps are Prefect tasks
submitted through the task runner (so their states, timings and logs are Prefect's), at most
``executor.dask.batches_in_flight`` pages at a time; the flow keeps the warehouse to itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.config_executor import DaskSection
from pipeline.enrich import Models
from pipeline.warehouse.base import Warehouse

INSTALL_HINT = "pip install 'feedback-pipeline[dask]' (prefect-dask and dask.distributed)"


def with_dask(config: EnrichmentConfig, address: str | None) -> EnrichmentConfig:
    """``config`` with ``executor.dask.address`` set to ``address`` (the command line's ``--dask``);
    unchanged when ``address`` is None. The address is validated like the config's."""
    if not address:
        return config
    current = config.executor.dask
    section = DaskSection(
        address=address, **({} if current is None else current.model_dump(exclude={"address"}))
    )
    out = config.model_copy(deep=True)
    out.executor.dask = section
    return out


def task_runner(section: DaskSection) -> Any:
    """Prefect's ``DaskTaskRunner`` for the section: a ``LocalCluster`` of N one-thread worker processes
    on 127.0.0.1 for ``local:N`` (started and stopped with the run), else the scheduler at the address."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"executor.dask needs prefect-dask: {INSTALL_HINT}") from exc
    from pipeline.distributed import MATH_THREAD_ENV, parse_local

    n = parse_local(section.address)
    if n is None:
        return DaskTaskRunner(address=section.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n,
            "threads_per_worker": 1,  # one batch at a time per worker process
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "env": MATH_THREAD_ENV,  # the workers' math libraries: one thread each
        }
    )


def _tasks() -> tuple[Any, Any]:
    from prefect import task
    from prefect.cache_policies import NONE

    from pipeline.distributed import prepare_on_worker, score_on_worker

    # No retries here: a lost worker's batch is resubmitted by pipeline.distributed.run_pages.
    return (
        task(prepare_on_worker, name="prepare", cache_policy=NONE),
        task(score_on_worker, name="embed_score", cache_policy=NONE),
    )


def distributed_pages(config: EnrichmentConfig) -> Callable[..., None] | None:
    """The page loop on the configured Dask cluster, or None when the config has none."""
    section = config.executor.dask
    if section is None:
        return None

    def run_on_cluster(
        wh: Warehouse, config: EnrichmentConfig, models: Models, summary: Any, pages: Iterator[pd.DataFrame]
    ) -> None:
        import distributed

        from pipeline.distributed import Submitter, run_pages

        prepare_task, score_task = _tasks()
        by_fn = {"prepare_on_worker": prepare_task, "score_on_worker": score_task}
        with task_runner(section) as runner:

            def submit(fn: Callable[..., Any], params: dict[str, Any]) -> Any:
                return runner.submit(by_fn[fn.__name__], params)

            def wait_any(futures: list[Any]) -> Iterable[Any]:
                wrapped = {f.wrapped_future: f for f in futures}
                with runner.client.as_current():  # distributed.wait finds the client here
                    done, _ = distributed.wait(list(wrapped), return_when="FIRST_COMPLETED")
                return [wrapped[d] for d in done]

            run_pages(
                wh,
                config,
                models,
                summary,
                pages,
                Submitter(submit, wait_any),
                section.batches_in_flight,
                section.max_attempts,
            )

    return run_on_cluster
