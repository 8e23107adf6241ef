"""``python -m recopt.bench`` = ``recopt bench``: see :mod:`recopt.cli.bench`."""

import sys

from recopt.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
