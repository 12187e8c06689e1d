"""Benchmarks run by hand (``oneeye bench ...`` or ``python bench/*.py``); never by the tests."""
