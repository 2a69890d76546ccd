"""``python -m vcore`` is the ``vcore`` command."""

import sys

from .cli import main

sys.exit(main())
