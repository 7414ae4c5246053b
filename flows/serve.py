"""Serve every deployment of prefect.yaml on one box (``feedback serve``).

The serving itself lives in :mod:`pipeline.deployments` (the CLI calls it from there); this entry point
keeps the names earlier releases exported.
"""

from __future__ import annotations

from pipeline.deployments import (
    PREFECT_YAML,
    declared_crons,
    declared_deployments,
    flow_of,
    serve_all,
    start_local_server,
    stop,
    wait_healthy,
)

serve_nightly = serve_all  # the name earlier releases exported

__all__ = [
    "PREFECT_YAML",
    "declared_crons",
    "declared_deployments",
    "flow_of",
    "serve_all",
    "serve_nightly",
    "start_local_server",
    "stop",
    "wait_healthy",
]
