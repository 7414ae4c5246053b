"""The file ``streamlit run`` runs (see :mod:`pipeline.dashboard.server`); every rerun calls ``main``."""

from pipeline.dashboard.ui import main

main()
