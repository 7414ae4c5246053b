"""The demo: the project's own synthetic sample survey (:mod:`pipeline.demo.sample`), its tables and
phrases (:mod:`pipeline.demo.tables`, ``data/*.json``)."""
