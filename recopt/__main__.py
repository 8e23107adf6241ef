"""``python -m recopt COMMAND ...`` = the ``recopt`` console script (:mod:`recopt.cli`)."""

import sys

from recopt.cli import main

if __name__ == "__main__":
    sys.exit(main())
