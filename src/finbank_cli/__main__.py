"""``python -m finbank_cli``: the ``finbank`` command."""

import sys

from finbank_cli.main import main

sys.exit(main())
