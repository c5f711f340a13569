"""srestream.sim."""

__all__: list[str] = []
