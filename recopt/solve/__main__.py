"""``python -m recopt.solve``: see :mod:`recopt.solve.cli`."""

import sys

from recopt.solve.cli import main

sys.exit(main())
