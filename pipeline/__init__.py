"""Feedback enrichment pipeline: the library (no Prefect imports, no heavy imports at import time)."""

__version__ = "0.1.0"
