"""``python -m pipeline.cli``: the ``feedback`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
