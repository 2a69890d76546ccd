"""``python -m vcore.visca ...`` runs the ``vcore camera`` command."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
