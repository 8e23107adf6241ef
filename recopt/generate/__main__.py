"""``python -m recopt.generate`` = ``recopt generate``: see :mod:`recopt.cli.generate`."""

import sys

from recopt.cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
