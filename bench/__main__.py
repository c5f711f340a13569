"""``python -m bench``: run the benchmarks (see bench/_harness.py and bench/README.md)."""

from __future__ import annotations

from bench._harness import main

raise SystemExit(main())
