"""LFW benchmark: ``python bench/lfw.py [--data ../shared/data/lfw] [--workers 2]``.

The same as ``oneeye bench lfw``; see ``oneeye/bench/lfw.py`` for the protocol.
"""

import sys

from oneeye.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "lfw", *sys.argv[1:]]))
