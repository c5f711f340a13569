"""Component registrations (see srestream._registry).

Each parse stage registers itself in its own module (``parse_json`` in
``_json``, which the registry also imports); importing them here makes
them part of the built-in set.
"""

from __future__ import annotations

from . import _access, _enrich, _json, _logfmt, _multiline, _syslog, _template  # noqa: F401
