"""One registry: built-ins with one-line summaries, third-party components
through the `srestream.components` entry-point group."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import srestream
from srestream import SinkConfig, SourceConfig, StageConfig


def test_every_builtin_has_a_summary_and_the_right_base() -> None:
    infos = srestream.components()
    assert {"replay", "stdin", "parse_json", "passthrough", "directory", "stdout"} <= set(infos)
    base = {"source": SourceConfig, "stage": StageConfig, "sink": SinkConfig}
    for t, info in infos.items():
        assert info.type == t
        assert info.summary and "\n" not in info.summary
        assert issubclass(info.config, base[info.kind])
        assert info.config.__struct_config__.forbid_unknown_fields, t


def _plugin(site: pathlib.Path, body: str) -> None:
    pkg = site / "acme_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    dist = site / "acme_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[srestream.components]\nacme = acme_plugin\n")


def _srestream(site: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, "-m", "srestream", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_a_third_party_component_arrives_through_the_entry_point(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    _plugin(
        site,
        """
        from srestream import StageConfig, register, map_records

        @register("Shout every message (a third-party example).")
        class Shout(StageConfig, frozen=True, kw_only=True, tag="acme_shout"):
            suffix: str = "!"

            def build(self, ctx):
                return map_records(lambda r: r)
        """,
    )
    r = _srestream(site, "components", "--options")
    assert r.returncode == 0, r.stderr
    assert "acme_shout" in r.stdout and "Shout every message" in r.stdout
    assert "suffix: str = '!'" in r.stdout

    p = tmp_path / "p.yaml"
    p.write_text(
        "sources: {s: {type: stdin}}\n"
        "stages: {x: {type: acme_shout, inputs: [s], suffix: 3}}\n"
        "sinks: {o: {type: stdout, inputs: [x]}}\n"
    )
    r = _srestream(site, "validate", str(p))
    assert r.returncode == 2
    assert "$.stages.x.suffix" in r.stderr and "Expected `str`, got `int`" in r.stderr


def test_a_broken_plugin_is_a_clear_configuration_error(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    _plugin(site, "raise ImportError('acme needs libfoo')\n")
    r = _srestream(site, "components")
    assert r.returncode == 2
    assert "entry point 'acme'" in r.stderr and "acme needs libfoo" in r.stderr


def test_validate_warns_about_side_outputs_nobody_reads(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(
        "sources: {s: {type: stdin}}\n"
        "stages: {parse: {type: parse_json, inputs: [s]}}\n"
        "sinks: {o: {type: stdout, inputs: [parse]}}\n"
    )
    r = _srestream(tmp_path, "validate", str(p))
    assert r.returncode == 0
    assert "parse.deadletter has no consumer" in r.stderr
