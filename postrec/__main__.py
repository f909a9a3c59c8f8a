"""``python -m postrec``: the console script without its installed wrapper."""

import sys

from postrec.cli import main

sys.exit(main())
