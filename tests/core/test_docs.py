"""docs/components.md is the registry's own reference, kept current."""

from __future__ import annotations

import pathlib

from srestream import components
from srestream._docs import render_component_docs

DOC = pathlib.Path(__file__).parent.parent.parent / "docs" / "components.md"


def test_component_reference_is_current() -> None:
    # Regenerate with:  srestream components --markdown > docs/components.md
    assert DOC.read_text() == render_component_docs()


def test_every_component_has_the_four_sections() -> None:
    text = render_component_docs()
    for t, info in components().items():
        section = text.split(f"## `{t}` ({info.kind})", 1)[1].split("\n## ", 1)[0]
        for heading in ("### Configuration", "### Telemetry", "### Example", "### How it works"):
            assert heading in section, (t, heading)
