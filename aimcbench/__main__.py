"""``python -m aimcbench`` is the same as the ``aimc`` command."""

import sys

from aimcbench.cli import main

sys.exit(main())
