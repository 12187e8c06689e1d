"""What the benchmarks share: LFW reading, feature extraction and metrics, encoding throughput,
and the labelled clip synthesiser (``synth``, also used by the tests to make test videos).

Scripts in ``bench/`` put the repository root on ``sys.path`` and import ``bench.lib.*``.
"""
