"""srestream.slo."""

__all__: list[str] = []
