"""Named fault points, for the tests that kill or break a real run at a chosen step.

``FEEDBACK_FAULT=after:<step>`` makes the process SIGKILL itself right after it completes ``<step>``
for the first time; ``after:<step>:<n>`` after the n-th time. ``fail:<step>[:<n>]`` raises
:class:`InjectedFault` there instead (the run then fails and records it). Unset, a fault point costs
one dictionary lookup.

The step names are a contract of the fault tests (tests/test_faults.py): later restructuring must keep
them. Steps of an enrichment run: ``run_start``, ``extract``, ``prepare``, ``embed``, ``topics_fit``,
``write_batch`` (once per committed batch), ``write_topics``, ``record_run``, ``alerts``.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "FEEDBACK_FAULT"
STEPS = (
    "run_start",
    "extract",
    "prepare",
    "embed",
    "topics_fit",
    "write_batch",
    "write_topics",
    "record_run",
    "alerts",
)
_seen: dict[str, int] = {}


class InjectedFault(RuntimeError):
    """The failure asked for by ``FEEDBACK_FAULT=fail:<step>``."""


def _parse(spec: str) -> tuple[str, str, int] | None:
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("after", "fail") or parts[1] not in STEPS:
        log.warning("%s=%r ignored: expected after|fail:<step>[:<n>] with a step among %s", ENV, spec, STEPS)
        return None
    try:
        nth = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        log.warning("%s=%r ignored: the count must be a whole number", ENV, spec)
        return None
    return parts[0], parts[1], nth


def fault_point(step: str) -> None:
    """Mark that ``step`` has just completed; kill or fail here when ``FEEDBACK_FAULT`` asks for it."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    parsed = _parse(spec)
    if parsed is None or parsed[1] != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    action, _, nth = parsed
    if _seen[step] != nth:
        return
    if action == "fail":
        raise InjectedFault(f"injected failure after step {step!r} ({ENV}={spec})")
    log.warning("%s=%s: killing this process (pid %d) with SIGKILL", ENV, spec, os.getpid())
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)
