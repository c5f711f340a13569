"""Parsers and the normalizer: raw lines in, :class:`~srestream.LogRecord` out."""

from ._json import ParseJsonStage, parse_json
from ._time import parse_timestamp

__all__ = ["ParseJsonStage", "parse_json", "parse_timestamp"]
