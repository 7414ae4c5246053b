"""The ``executor`` section of the enrichment config: where a run's batches are computed.

Without it (the default) every batch runs in the run's own process. With ``executor: {dask: {address:
tcp://host:8786}}`` the batches go to that ``dask.distributed`` cluster through Prefect's
``DaskTaskRunner`` (:mod:`pipeline.distributed`); ``address: local:N`` starts a ``LocalCluster`` of N
worker processes for the run, each limited to one math-library thread.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[^\s/:]+(:\d+)?/?$|^local:[1-9]\d*$")


class DaskSection(BaseModel):
    """A Dask cluster for the batches.

    Attributes:
        address: The scheduler (``tcp://host:8786``), or ``local:N`` for a LocalCluster of N worker
            processes started by the run.
        batches_in_flight: The most batches on the cluster at once (bounds the flow's memory to about
            that many batches); about twice the number of workers keeps every worker busy.
        max_attempts: Submissions of one batch step before the run fails (a worker lost mid-batch is
            retried on another one).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    address: str
    batches_in_flight: int = Field(4, ge=1, le=1000)
    max_attempts: int = Field(3, ge=1, le=20)

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        value = value.strip()
        if not _ADDRESS.match(value):
            raise ValueError(
                f"expected a Dask scheduler address such as tcp://10.0.0.5:8786, or local:N (N worker "
                f"processes on this machine, e.g. local:2); found {value!r}"
            )
        return value


class ExecutorSection(BaseModel):
    """Where batches run: in process (no ``dask``), or on a Dask cluster."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dask: DaskSection | None = None
