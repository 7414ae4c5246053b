"""The pipeline's clock: naive UTC, settable for tests and soaks.

``FEEDBACK_NOW=2026-03-01T00:00:00`` (ISO, naive = UTC) starts the clock at that instant when the
process first reads it; it then advances with real time. Unset, it is the system clock.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

ENV = "FEEDBACK_NOW"
_origin: tuple[str, datetime, float] | None = None


def utcnow() -> datetime:
    """Naive UTC now, to the microsecond (the warehouse stores naive UTC)."""
    global _origin
    spec = os.environ.get(ENV, "").strip()
    if not spec:
        return datetime.now(UTC).replace(tzinfo=None)
    if _origin is None or _origin[0] != spec:
        try:
            start = datetime.fromisoformat(spec)
        except ValueError as exc:
            from pipeline.errors import ConfigError

            raise ConfigError(f"{ENV}={spec!r} is not an ISO date-time, e.g. 2026-03-01T02:00:00.") from exc
        if start.tzinfo is not None:
            start = start.astimezone(UTC).replace(tzinfo=None)
        _origin = (spec, start, time.monotonic())
    return _origin[1] + timedelta(seconds=time.monotonic() - _origin[2])
