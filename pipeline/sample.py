"""The sample survey under its earlier name: it lives in :mod:`pipeline.demo.sample` now.

Kept because the black-box fault helpers (``tests/fault_helpers.py``) and outside scripts import
``pipeline.sample``; new code imports ``pipeline.demo.sample``.
"""

from pipeline.demo.sample import *  # noqa: F403
from pipeline.demo.sample import __all__  # noqa: F401
