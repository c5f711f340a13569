"""srestream.correlate."""

__all__: list[str] = []
