"""Every timestamp form to UTC ns (SPEC §3.2), checked against datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from srestream.parse import TimestampParser, apache_to_ns, parse_timestamp, syslog_to_ns


def ns(dt: datetime) -> int:
    """Reference conversion through datetime (µs precision is enough here)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-03-10T07:00:00Z", datetime(2024, 3, 10, 7, tzinfo=UTC)),
        ("2024-03-10T07:00:00.123Z", datetime(2024, 3, 10, 7, 0, 0, 123000, tzinfo=UTC)),
        ("2024-03-10T07:00:00.123456z", datetime(2024, 3, 10, 7, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-10 07:00:00,5+00:00", datetime(2024, 3, 10, 7, 0, 0, 500000, tzinfo=UTC)),
        # US DST starts 2024-03-10 02:00 local: -05:00 before, -04:00 after.
        ("2024-03-10T01:59:59-05:00", datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC)),
        ("2024-03-10T03:00:00-04:00", datetime(2024, 3, 10, 7, 0, 0, tzinfo=UTC)),
        # Europe: DST ends 2024-10-27 03:00 CEST -> 02:00 CET: the same wall time twice.
        ("2024-10-27T02:30:00+02:00", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        ("2024-10-27T02:30:00+01:00", datetime(2024, 10, 27, 1, 30, tzinfo=UTC)),
        ("2024-01-01T05:30:00+0530", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
        ("2023-12-31T23:00:00-01:00", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
        ("10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
        ("[10/Oct/2000:13:55:36 +0000]", datetime(2000, 10, 10, 13, 55, 36, tzinfo=UTC)),
        ("Sun Dec 04 04:47:44 2005", datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC)),
    ],
)
def test_text_forms(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == ns(expected)


def test_nanosecond_fraction_is_kept() -> None:
    assert (
        parse_timestamp("2024-03-10T07:00:00.123456789Z")
        == ns(datetime(2024, 3, 10, 7, tzinfo=UTC)) + 123_456_789
    )
    assert (
        parse_timestamp("2024-03-10T07:00:00.000000001+01:00")
        == ns(datetime(2024, 3, 10, 6, tzinfo=UTC)) + 1
    )


@pytest.mark.parametrize(
    "value",
    [
        1710054000,
        1710054000_000,
        1710054000_000_000,
        1710054000_000_000_000,
        "1710054000",
        "1710054000000",
        1710054000.0,
    ],
)
def test_epoch_seconds_ms_us_ns(value: object) -> None:
    assert parse_timestamp(value) == ns(datetime(2024, 3, 10, 7, tzinfo=UTC))


def test_epoch_fractions() -> None:
    assert parse_timestamp(1710054000.25) == ns(datetime(2024, 3, 10, 7, tzinfo=UTC)) + 250_000_000
    assert (
        parse_timestamp("1710054000123.5") == ns(datetime(2024, 3, 10, 7, tzinfo=UTC)) + 123_500_000
    )


def test_explicit_epoch_units() -> None:
    # A small number means what the format says, not what its magnitude suggests.
    assert TimestampParser("epoch_ms")(1500) == 1_500_000_000
    assert TimestampParser("epoch_s")("12.5") == 12_500_000_000
    assert TimestampParser("epoch_us")(7) == 7_000
    assert TimestampParser("epoch_ns")(7) == 7


def test_syslog_year_from_reference_and_rollover() -> None:
    ref = ns(datetime(2024, 6, 1, tzinfo=UTC))
    assert syslog_to_ns("Jun  1 12:00:00", ref) == ns(datetime(2024, 6, 1, 12, tzinfo=UTC))
    # Read in early January, a late-December line is from last year ...
    jan = ns(datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
    assert syslog_to_ns("Dec 31 23:59:59", jan) == ns(
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    # ... and read late in December, an early-January line is next year's.
    dec = ns(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert syslog_to_ns("Jan  1 00:00:01", dec) == ns(datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC))
    # Feb 29 only exists in a leap year: the nearest one that has it.
    assert syslog_to_ns("Feb 29 10:00:00", ns(datetime(2024, 3, 1, tzinfo=UTC))) == ns(
        datetime(2024, 2, 29, 10, tzinfo=UTC)
    )


def test_syslog_year_follows_the_stream_across_new_year() -> None:
    p = TimestampParser("syslog", reference_ns=ns(datetime(2024, 12, 30, tzinfo=UTC)))
    lines = [
        "Dec 31 23:59:58",
        "Dec 31 23:59:59",
        "Jan  1 00:00:00",
        "Jan  1 00:00:01",
        "Mar  3 10:00:00",
    ]
    got = [p(x) for x in lines]
    assert got == sorted(got)
    assert got[2] == ns(datetime(2025, 1, 1, tzinfo=UTC))
    assert got[4] == ns(datetime(2025, 3, 3, 10, tzinfo=UTC))


def test_custom_strptime_formats() -> None:
    assert TimestampParser("%d.%m.%Y %H:%M:%S")("10.03.2024 07:00:00") == ns(
        datetime(2024, 3, 10, 7, tzinfo=UTC)
    )
    assert TimestampParser("%Y%m%d-%H:%M:%S:%f")("20171223-22:15:29:606") == ns(
        datetime(2017, 12, 23, 22, 15, 29, 606000, tzinfo=UTC)
    )
    assert TimestampParser("%Y-%m-%d %H:%M:%S %z")("2024-03-10 03:00:00 -0400") == ns(
        datetime(2024, 3, 10, 7, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match="does not match format"):
        TimestampParser("%d.%m.%Y %H:%M:%S")("2024-03-10 07:00:00")
    with pytest.raises(ValueError, match="unknown time format"):
        TimestampParser("dd-mm-yyyy")


def test_time_zone_for_naive_times_follows_dst() -> None:
    ny = TimestampParser("%Y-%m-%d %H:%M:%S", time_zone="America/New_York")
    assert ny("2024-03-10 01:30:00") == ns(
        datetime(2024, 3, 10, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    )
    assert ny("2024-03-10 01:30:00") == ns(datetime(2024, 3, 10, 6, 30, tzinfo=UTC))  # EST
    assert ny("2024-03-10 03:30:00") == ns(datetime(2024, 3, 10, 7, 30, tzinfo=UTC))  # EDT
    auto = TimestampParser("auto", time_zone="Europe/Paris")
    assert auto("2024-07-01T12:00:00") == ns(datetime(2024, 7, 1, 10, tzinfo=UTC))
    assert auto("2024-07-01T12:00:00Z") == ns(datetime(2024, 7, 1, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "",
        "2024-13-01T00:00:00Z",
        "2024-03-10T07:00:00+25",
        "32/Oct/2000:13:55:36 -0700",
        True,
        None,
        10**30,
        1e300,
        float("nan"),
        "99999999999999999999999",
    ],
)
def test_bad_timestamps_say_so(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(bad)


def test_apache_fast_path_matches_datetime_over_a_year() -> None:
    start = datetime(2023, 12, 25, 23, 59, 58, tzinfo=timezone(timedelta(hours=-7)))
    for k in range(0, 400 * 86400, 86400 * 7 + 3601):
        t = start + timedelta(seconds=k)
        assert apache_to_ns(t.strftime("%d/%b/%Y:%H:%M:%S %z")) == ns(t)
