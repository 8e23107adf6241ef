"""``python -m recopt.keys``: see :mod:`recopt.keys.cli`."""

import sys

from recopt.keys.cli import main

sys.exit(main())
