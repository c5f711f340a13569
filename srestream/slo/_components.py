"""Component registrations (see srestream._registry)."""

from __future__ import annotations
