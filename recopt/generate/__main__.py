"""``python -m recopt.generate`` (see :mod:`recopt.generate.cli`)."""

import sys

from recopt.generate.cli import main

sys.exit(main())
