"""``python -m recopt.solve`` = ``recopt solve``: see :mod:`recopt.cli.solve`."""

import sys

from recopt.cli.solve import main

if __name__ == "__main__":
    sys.exit(main())
