"""The CX workspace: a Streamlit dashboard over the analysis layer (``feedback dashboard``).

Pieces, each small:

* :mod:`pipeline.dashboard.snapshot`: the read-only copy of a DuckDB warehouse that each run publishes
  (the dashboard never opens the warehouse a run writes, so an open dashboard never blocks a run and a
  run never breaks an open dashboard), and how the dashboard opens what it reads.
* :mod:`pipeline.dashboard.edits`: where the dashboard's own writes (follow-up status/owner/note and
  label corrections) go: a small side DuckDB file next to a DuckDB warehouse, imported by the next run;
  the warehouse itself for PostgreSQL and other SQL databases.
* :mod:`pipeline.dashboard.state`: the filter state and its URL form (pure; no Streamlit).
* :mod:`pipeline.dashboard.app` and the ``page_*`` modules: the Streamlit app (the file ``streamlit run``
  runs). Streamlit is imported only there and in :mod:`pipeline.dashboard.server`, never when the library
  is imported.
"""

from __future__ import annotations
