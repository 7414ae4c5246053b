"""What both kinds of run lock share: the refusal error, the lock's description, and the checks of the
arguments (:mod:`pipeline.warehouse.lock` takes the lock)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from pipeline.errors import ConfigError, FeedbackError
from pipeline.warehouse.base import is_null

if TYPE_CHECKING:
    pass

ADVISORY = "advisory"
LEASE = "lease"


class RunLockHeld(FeedbackError):
    """Another run holds the run lock.

    ``str(exc)`` is one line naming the holder and since when it holds the lock, and saying what to
    do about it.

    Attributes:
        holder: The holder string of the run that holds the lock, or None when it could not be found
            out (e.g. it released the lock while we looked).
    """

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep `holder` when the error is pickled (Prefect moves exceptions between processes).
        return (type(self), (str(self), self.holder))


@dataclass(frozen=True)
class LockInfo:
    """The run lock a ``with run_lock(...)`` block holds.

    Attributes:
        name: The lock's name.
        holder: Our holder string.
        backend: ``"advisory"`` (a PostgreSQL advisory lock) or ``"lease"`` (a lease row in a table).
    """

    name: str
    holder: str
    backend: str


@dataclass(frozen=True)
class _Refusal:
    """Who holds the lock, as far as we could find out."""

    holder: str | None
    details: str  # e.g. "pid 1234 on host-b, since 2026-01-02 03:04:05 UTC"
    advice: str  # what to do when that process is dead


class _Lock(Protocol):
    backend: str

    def describe(self) -> str: ...

    def try_acquire(self) -> _Refusal | None: ...

    def release(self) -> None: ...


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"run_lock needs a non-empty string as {what}, got {value!r}"
            + (" (e.g. default_holder(run_id))." if what == "holder" else ".")
        )


def _check_seconds(what: str, value: object, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"run_lock: {what} must be a finite number of seconds {bound}, got {value!r}.")


def _utc_text(value: object) -> str:
    if value is None or is_null(value):
        return "an unknown time"
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _utcnow() -> dt.datetime:
    """Now, as naive UTC (the warehouse convention for timestamps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
