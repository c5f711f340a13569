"""All 8 Loghub-2k systems parse with their header templates: 0 dead
letters, header fields equal to the ground truth ``*_structured.csv``."""

from __future__ import annotations

import csv
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream import LogRecord
from srestream._component import Outputs
from srestream._records import RawLine
from srestream.parse import HeaderTemplate, Normalizer, TimestampParser, parse_template
from srestream.parse._time import rfc3339_to_ns
from srestream.testing import run_stage

DATA = pathlib.Path(__file__).parent.parent / "data" / "loghub"
SETTINGS = json.loads((DATA / "settings.json").read_text())["datasets"]
SYSTEMS = sorted(SETTINGS)

# How each system writes its time (what an SRE would put in the pipeline file).
TIME_FORMATS = {
    "HDFS": "%y%m%d %H%M%S",
    "Hadoop": "auto",
    "Spark": "%y/%m/%d %H:%M:%S",
    "Zookeeper": "auto",
    "Linux": "syslog",
    "HealthApp": "%Y%m%d-%H:%M:%S:%f",
    "Apache": "ctime",
    "OpenSSH": "syslog",
}
# The first line's time, read by eye from each file.
FIRST_TS = {
    "HDFS": "2008-11-09T20:36:15Z",
    "Hadoop": "2015-10-18T18:01:47.978Z",
    "Spark": "2017-06-09T20:10:40Z",
    "Zookeeper": "2015-07-29T17:41:44.747Z",
    "Linux": "2005-06-14T15:16:01Z",
    "HealthApp": "2017-12-23T22:15:29.606Z",
    "Apache": "2005-12-04T04:47:44Z",
    "OpenSSH": "2017-12-10T06:55:46Z",
}
# For the syslog forms (no year): the years the logs were written in.
REFERENCE = {"Linux": "2005-06-14T00:00:00Z", "OpenSSH": "2017-12-10T00:00:00Z"}


def raw_lines(system: str) -> list[RawLine]:
    data = (DATA / SETTINGS[system]["log_file"]).read_bytes().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [
        RawLine(source=f"{system}_2k.log", position=i, offset=0, text=ln.removesuffix("\r"))
        for i, ln in enumerate(lines, 1)
    ]


def truth(system: str) -> list[dict[str, str]]:
    with open(DATA / SETTINGS[system]["structured"], encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_all_eight_systems_are_here() -> None:
    assert len(SYSTEMS) == 8
    assert (DATA / "LICENSE.loghub").exists() and (DATA / "CITATION.loghub").exists()


@pytest.mark.parametrize("system", SYSTEMS)
def test_header_fields_equal_the_ground_truth(system: str) -> None:
    template = HeaderTemplate(SETTINGS[system]["log_format"])
    lines = raw_lines(system)
    rows = truth(system)
    assert len(lines) == len(rows) == 2000
    for raw, row in zip(lines, rows):
        fields = template.match(raw.text)
        assert fields is not None, raw
        got = {name: fields.get(name, "") for name in template.names}
        assert got == {name: row[name] for name in template.names}, raw.position


@pytest.mark.parametrize("system", SYSTEMS)
async def test_stage_parses_every_line_with_no_dead_letter(system: str) -> None:
    ref = rfc3339_to_ns(REFERENCE.get(system, "2020-01-01T00:00:00Z"))
    norm = Normalizer(
        times=TimestampParser(TIME_FORMATS[system], reference_ns=ref), default_service=system
    )
    outputs = Outputs("parse")
    out: list[LogRecord] = await run_stage(
        parse_template,
        raw_lines(system),
        batch_size=256,
        template=SETTINGS[system]["log_format"],
        normalizer=norm,
        outputs=outputs,
    )
    assert outputs.take() == {}
    rows = truth(system)
    assert [r.position for r in out] == list(range(1, 2001))
    for rec, row in zip(out, rows):
        assert rec.message == row["Content"]
        assert rec.service == system
        if "Component" in row:
            assert rec.component == row["Component"]
    # Event time comes from the header, in ns UTC.
    assert out[0].ts_ns == rfc3339_to_ns(FIRST_TS[system])


async def test_levels_of_systems_with_a_level_field() -> None:
    norm = Normalizer(times=TimestampParser("%y%m%d %H%M%S"))
    out = await run_stage(
        parse_template,
        raw_lines("HDFS"),
        template=SETTINGS["HDFS"]["log_format"],
        normalizer=norm,
        outputs=Outputs(),
    )
    rows = truth("HDFS")
    names = {"INFO": 9, "WARN": 13, "ERROR": 17}
    assert [r.level for r in out] == [names[row["Level"]] for row in rows]
    # 081109 203615 is 2008-11-09T20:36:15Z
    assert out[0].ts_ns == rfc3339_to_ns("2008-11-09T20:36:15Z")


@given(
    st.sampled_from(SYSTEMS),
    st.text(alphabet=" \t:[]-@|()a1", max_size=30),
)
@settings(max_examples=1500, deadline=None)
def test_split_plan_and_feasibility_agree_with_the_regex(system: str, line: str) -> None:
    """The fast paths are shortcuts of logparser's regular expression: on
    any line they give what the regular expression gives."""
    template = HeaderTemplate(SETTINGS[system]["log_format"])
    m = template.regex.match(line.strip())
    expected = None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}
    assert template.match(line) == expected


def test_lines_that_do_not_match_fail_fast() -> None:
    """Without the linear pre-check, logparser's regex backtracks for
    minutes on these (every field can stretch over every space)."""
    import time

    for system in SYSTEMS:
        template = HeaderTemplate(SETTINGS[system]["log_format"])
        for line in (" ".join(["w"] * 3000), " ".join(["w:"] * 3000), "x\t" * 3000):
            start = time.perf_counter()
            template.match(line)
            assert time.perf_counter() - start < 0.5, (system, line[:20])
