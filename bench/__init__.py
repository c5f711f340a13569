"""srestream benchmarks: ``python -m bench`` runs them all (see README.md).

Each ``bench/<name>.py`` runs alone as ``python -m bench.<name>`` and
exposes ``main(argv) -> dict``; shared helpers are in ``bench._common``.
"""
