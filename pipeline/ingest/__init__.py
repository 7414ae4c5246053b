"""Ingest: source rows in, checked, and pending by content.

``source`` (exports read and validated: column mapping, survey types, scores, timestamps, quarantine
reasons), ``load`` (an export upserted into the source table; the run's row validation and watermark),
``pending`` (which source rows have no enrichment or quarantine record for their current content).
"""
