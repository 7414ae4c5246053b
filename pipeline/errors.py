"""All errors the library raises, in one place.

Every message says what was expected, what was found, and how to fix it.
"""

from __future__ import annotations

import importlib
from typing import Any


class FeedbackError(Exception):
    """Base class of every error raised by the pipeline."""


class ConfigError(FeedbackError, ValueError):
    """A configuration file or value is invalid."""


class SchemaError(FeedbackError, ValueError):
    """Input data lacks required columns or has unusable types."""


class InsufficientDataError(FeedbackError, ValueError):
    """Too few rows to fit a model."""


class NotFittedError(FeedbackError, RuntimeError):
    """A stage was used before ``fit`` was called."""


class MissingDependencyError(FeedbackError, ImportError):
    """An optional heavy dependency is not installed."""


class UnknownComponentError(FeedbackError, KeyError):
    """A registry name does not match any registered component."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def optional_import(module: str, message: str) -> Any:
    """Import ``module`` where a part needs it (heavy and optional packages are imported lazily).

    Raises:
        MissingDependencyError: With ``message`` (what needs the package and how to install it) when the
            package is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(message) from exc


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def missing_columns(
    what: str,
    expected: list[str],
    found: list[str],
    hint: str = "Rename your columns or map them in the config (source.columns).",
) -> SchemaError:
    """Build a SchemaError naming the expected and the found columns, and how to fix it (``hint``)."""
    missing = [c for c in expected if c not in found]
    return SchemaError(
        f"{what}: missing column(s) {missing}. Expected at least {expected}; found {list(found)}. {hint}"
    )
