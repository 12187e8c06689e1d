"""``python -m oneeye.cli``: the same as the ``oneeye`` command."""

import sys

from oneeye.cli import main

sys.exit(main())
