"""`python -m devtools.container`: the container test (see devtools/container/__init__.py)."""

import sys

from devtools.container.drive import main

if __name__ == "__main__":
    sys.exit(main())
