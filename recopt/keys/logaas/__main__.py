"""``python -m recopt.keys.logaas`` = ``recopt logaas``: see :mod:`recopt.cli.logaas`."""

import sys

from recopt.cli.logaas import main

if __name__ == "__main__":
    sys.exit(main())
