"""OneEye's benchmarks: each ``bench/*.py`` is a script (``python bench/lfw.py --help``), and
``bench.lib`` holds what they share. The product (``oneeye``) never imports anything here."""
