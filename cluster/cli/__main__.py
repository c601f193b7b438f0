"""``python -m cluster.cli``: the ``mespot`` command."""

import sys

from cluster.cli import main

sys.exit(main())
