"""``python -m synthmix`` is the ``synthmix`` command."""

import sys

from synthmix.cli import main

sys.exit(main())
