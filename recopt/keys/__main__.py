"""``python -m recopt.keys`` = ``recopt keys``: see :mod:`recopt.cli.keys`."""

import sys

from recopt.cli.keys import main

if __name__ == "__main__":
    sys.exit(main())
