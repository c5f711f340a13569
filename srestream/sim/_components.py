"""Component registrations (see srestream._registry)."""

from __future__ import annotations

from ._source import SimSource

__all__ = ["SimSource"]
