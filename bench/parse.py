"""Benchmark of the parsers and the normalizer (``srestream.parse``).

Inputs: for each format, ``--records`` lines generated deterministically
(seeded) and cached under ``bench/.cache/parse/``: JSON lines (10 fields:
ts, level, service, msg, trace and span ids, status, latency_ms, path,
method), logfmt (the same content, ``msg`` quoted), syslog (half RFC 5424,
a third of those with structured data, half RFC 3164), access logs
(combined) and header templates (HDFS's ``<Date> <Time> <Pid> <Level>
<Component>: <Content>``, which compiles to a split plan, and Linux's,
which has an optional part and runs as a regular expression).  Event time
advances 1 ms per line.

Each figure is the batch function of the stage (parse + normalize to
LogRecords, 1024 lines per batch, lines already in memory as RawLines):

* ``<format>_lines_per_s`` (median of ``--runs``);
* ``msgspec_decode_records_per_s``: ``msgspec.json.Decoder().decode`` of
  the same JSON lines one by one, alone; ``ratio_to_msgspec_decode`` is the
  JSONL path over that (target >= 0.70);
* ``<format>_cpu_lines_per_s`` and ``cpu_ratio_to_msgspec_decode``: the
  same by process CPU time, steadier on a shared, noisy machine;
* ``jsonl_floor_cpu_lines_per_s`` / ``floor_cpu_ratio_to_msgspec_decode``:
  the least any JSONL path does (one Struct decode per batch, one bare
  LogRecord per line, no field work), to read the JSONL figure against;
* ``peak_rss_kb``.

Run: ``python -m bench.parse [--records 1000000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from bench._common import CACHE, decode_rate, peak_rss_kb, timed

DEFAULT_RECORDS = 1_000_000
BATCH = 1024
START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
FORMATS = ("jsonl", "logfmt", "syslog", "access", "template_hdfs", "template_linux")
HDFS = "<Date> <Time> <Pid> <Level> <Component>: <Content>"
LINUX = r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>"
PATHS = (
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/search?q=shoes",
    "/health",
    "/api/v2/items/42",
)
MSGS = (
    "request handled",
    "cache miss for key user:42",
    "upstream timeout after 3 retries",
    "payment authorised",
    "slow query on orders table",
)


def _iso(t: float) -> str:
    ms = round(t * 1000) % 1000
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def generate(fmt: str, n: int, seed: int = 7) -> list[str]:
    """``n`` lines of ``fmt``, the same for the same arguments."""
    rnd = random.Random(f"{fmt}-{seed}")
    out: list[str] = []
    add = out.append
    for i in range(n):
        t = START + i / 1000
        level = rnd.choices(("info", "warn", "error", "debug"), (80, 10, 5, 5))[0]
        svc = f"svc-{rnd.randrange(100):03d}"
        status = rnd.choices((200, 201, 404, 500, 503), (85, 5, 5, 3, 2))[0]
        lat = round(rnd.expovariate(1 / 40), 3)
        msg = rnd.choice(MSGS)
        trace = f"{rnd.getrandbits(128):032x}"
        span = f"{rnd.getrandbits(64):016x}"
        path = rnd.choice(PATHS)
        if fmt == "jsonl":
            add(
                json.dumps(
                    {
                        "ts": _iso(t),
                        "level": level,
                        "service": svc,
                        "msg": msg,
                        "trace_id": trace,
                        "span_id": span,
                        "status": status,
                        "latency_ms": lat,
                        "path": path,
                        "method": "GET",
                    },
                    separators=(",", ":"),
                )
            )
        elif fmt == "logfmt":
            add(
                f'ts={_iso(t)} level={level} service={svc} msg="{msg}" trace_id={trace} '
                f"span_id={span} status={status} latency_ms={lat} path={path} method=GET"
            )
        elif fmt == "syslog":
            sev = {"info": 6, "warn": 4, "error": 3, "debug": 7}[level]
            if i % 2:
                sd = f'[req@32473 trace_id="{trace}" status="{status}"]' if i % 3 == 0 else "-"
                add(f"<{16 * 8 + sev}>1 {_iso(t)} host{i % 7} {svc} {1000 + i % 97} - {sd} {msg}")
            else:
                stamp = datetime.fromtimestamp(int(t), UTC).strftime("%b %d %H:%M:%S")
                add(f"<{16 * 8 + sev}>{stamp} host{i % 7} {svc}[{1000 + i % 97}]: {msg}")
        elif fmt == "access":
            stamp = datetime.fromtimestamp(int(t), UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
            add(
                f'10.{i % 256}.{(i >> 8) % 256}.7 - - [{stamp}] "GET {path} HTTP/1.1" {status} '
                f'{rnd.randrange(100, 50000)} "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64)"'
            )
        elif fmt == "template_hdfs":
            stamp = datetime.fromtimestamp(int(t), UTC).strftime("%y%m%d %H%M%S")
            add(
                f"{stamp} {100 + i % 900} {level.upper()} dfs.DataNode$PacketResponder: "
                f"PacketResponder {i % 3} for block blk_{rnd.getrandbits(62)} terminating"
            )
        elif fmt == "template_linux":
            stamp = datetime.fromtimestamp(int(t), UTC).strftime("%b %d %H:%M:%S")
            pid = f"[{1000 + i % 97}]" if i % 4 else ""
            add(
                f"{stamp} combo sshd(pam_unix){pid}: authentication failure; logname= uid=0 "
                f"euid=0 tty=NODEVssh ruser= rhost=218.188.2.{i % 256}"
            )
        else:
            raise ValueError(fmt)
    return out


def lines_for(fmt: str, n: int) -> list[str]:
    """Generated lines, cached under bench/.cache/parse/."""
    path = CACHE / "parse" / f"{fmt}-{n}.log"
    if path.exists():
        return path.read_text(encoding="utf-8").split("\n")[:n]
    lines = generate(fmt, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return lines


def _batch_fn(fmt: str) -> Callable[[Sequence[Any], Any], list[Any]]:
    from srestream.parse import (
        HeaderTemplate,
        Normalizer,
        TemplateParser,
        TimestampParser,
        parse_access_line,
        parse_batch,
        parse_json_batch,
        parse_logfmt_line,
        parse_syslog_line,
    )

    ref = int(START * 1e9)
    if fmt == "jsonl":
        norm = Normalizer()
        return lambda batch, outs: parse_json_batch(batch, outs, norm)
    if fmt == "template_hdfs":
        norm = Normalizer(times=TimestampParser("%y%m%d %H%M%S"))
        line_parser: Callable[[str], dict[str, Any]] = TemplateParser(HeaderTemplate(HDFS))
    elif fmt == "template_linux":
        norm = Normalizer(times=TimestampParser("syslog", reference_ns=ref))
        line_parser = TemplateParser(HeaderTemplate(LINUX))
    else:
        norm = Normalizer(times=TimestampParser("auto", reference_ns=ref))
        line_parser = {
            "logfmt": parse_logfmt_line,
            "syslog": parse_syslog_line,
            "access": parse_access_line,
        }[fmt]
    return lambda batch, outs: parse_batch(batch, line_parser, norm, outs, fmt)


def measure(fmt: str, lines: list[str], runs: int) -> tuple[float, float, int, int]:
    """(median lines/s by the wall clock, by CPU time, records out, dead
    letters) of one format."""
    from srestream._component import Outputs
    from srestream._records import RawLine

    raws = [RawLine(source=fmt, position=i, offset=0, text=t) for i, t in enumerate(lines, 1)]
    batches = [raws[i : i + BATCH] for i in range(0, len(raws), BATCH)]
    counts = [0, 0]

    def run() -> None:
        fn = _batch_fn(fmt)  # a fresh normalizer per run: no warm caches carried over
        outs = Outputs(fmt)
        n = 0
        for b in batches:
            n += len(fn(b, outs))
        counts[0] = n
        counts[1] = len(outs.take().get("deadletter", ()))

    cpu: list[float] = []

    def run_cpu() -> None:
        t = time.process_time()
        run()
        cpu.append(time.process_time() - t)

    secs, _ = timed(run_cpu, runs)
    return len(lines) / secs, len(lines) / statistics.median(cpu), counts[0], counts[1]


def _floor_rate(lines: list[str], runs: int) -> float:
    """CPU lines/s of the least any JSONL path must do: decode each batch in
    one call into the learned Struct and make one LogRecord per line (no
    field work at all).  The JSONL figure is read against this floor."""
    from srestream._component import Outputs
    from srestream._records import LogRecord, RawLine
    from srestream.parse import Normalizer, parse_json_batch

    norm = Normalizer()
    parse_json_batch(
        [RawLine(source="f", position=1, offset=0, text=t) for t in lines[:BATCH]], Outputs(), norm
    )
    decode = norm.json_path.typed[0]
    texts = ["[" + ",".join(lines[i : i + BATCH]) + "]" for i in range(0, len(lines), BATCH)]
    cpu: list[float] = []
    for _ in range(max(1, runs)):
        t = time.process_time()
        for text in texts:
            [LogRecord(ts_ns=0, source="f", position=1, attrs={}) for _ in decode(text)]
        cpu.append(time.process_time() - t)
    return len(lines) / statistics.median(cpu)


def _steps(lines: list[str], runs: int) -> dict[str, float]:
    """CPU ns per line of the JSONL path built up step by step, each step
    the previous one plus one thing the normalizer must do (the cheapest
    pure-Python form of it, the one the fast path uses): decode the batch
    into the learned Struct; + one bare LogRecord per line; + the text
    fields and status copied; + the RFC 3339 timestamp to ns; + level and
    latency; + ``attrs`` (= the fast path itself).  With ``decode_alone``
    (one line at a time into a dict), they show where the time goes and
    what a ratio target leaves for each step."""
    from srestream._component import Outputs
    from srestream._records import LogRecord, RawLine
    from srestream.parse import Normalizer, parse_json_batch
    from srestream.parse._json_fast import _FractionCache, _LevelCache, _SecondCache
    from srestream.parse._levels import _LEVELS

    norm = Normalizer()
    raws = [RawLine(source="f", position=i, offset=0, text=t) for i, t in enumerate(lines, 1)]
    parse_json_batch(raws[:BATCH], Outputs(), norm)
    path = norm.json_path
    decode, fast = path.typed[0], path.fast
    batches = [raws[i : i + BATCH] for i in range(0, len(raws), BATCH)]
    texts = ["[" + ",".join(r.text for r in b) + "]" for b in batches]
    attr = {f.encode_name: f.name for f in msgspec.structs.fields(type(decode(texts[0])[0]))}
    ts, lv, lat = (f"k.{attr[k]}" for k in ("ts", "level", "latency_ms"))
    fields = ", ".join(
        f"{f}=k.{attr[k]}"
        for f, k in (("service", "service"), ("message", "msg"), ("trace_id", "trace_id"),
                     ("span_id", "span_id"), ("status", "status"))
    )
    stamp = (f"(b + _fracs[x[19:]]) if p <= (x := {ts}) < q else ((b := _secs[(h := x[:19])])"
             " + _fracs[x[19:]] + 0 * len((p := h + '.', q := h + '/')))")
    rest = f"level=_lv[{lv}], latency_ns=None if (y := {lat}) is None else (y * 1000000).__round__()"
    steps = {
        "decode_batch": "k",
        "record": "_LogRecord(ts_ns=0, source=r.source, position=r.position)",
        "fields": f"_LogRecord(ts_ns=0, {fields}, source=r.source, position=r.position)",
        "timestamp": f"_LogRecord(ts_ns={stamp}, {fields}, source=r.source, position=r.position)",
        "level_latency": f"_LogRecord(ts_ns={stamp}, {fields}, {rest}, source=r.source, position=r.position)",
    }
    fns: dict[str, Any] = {}
    for name, expr in steps.items():
        env: dict[str, Any] = {"_LogRecord": LogRecord, "_round": round, "_lv": _LevelCache(_LEVELS),
                               "_secs": _SecondCache(), "_fracs": _FractionCache(None)}
        src = f"def step(objs, batch):\n    p = q = ''\n    b = 0\n    return [{expr} for k, r in zip(objs, batch)]"
        exec(src, env)  # noqa: S102 - bench-only, constants
        fns[name] = env["step"]
    fns["attrs_full_path"] = fast
    best: dict[str, float] = {}
    for _ in range(max(3, runs)):
        for name, fn in fns.items():
            t = time.process_time()
            for text, b in zip(texts, batches):
                fn(decode(text), b)
            best[name] = min(best.get(name, 1e9), time.process_time() - t)
        dl = msgspec.json.Decoder().decode
        t = time.process_time()
        for line in lines:
            dl(line)
        best["decode_alone"] = min(best.get("decode_alone", 1e9), time.process_time() - t)
    return {k: round(v / len(lines) * 1e9, 1) for k, v in best.items()}


def _decode_rates(lines: list[str], runs: int) -> tuple[float, float]:
    """msgspec decoding the same lines alone, one by one: (wall, CPU) lines/s."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(max(1, runs)):
        t, c = time.perf_counter(), time.process_time()
        decode_rate(lines, 1)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return len(lines) / statistics.median(wall), len(lines) / statistics.median(cpu)


def _jsonl(lines: list[str], runs: int, out: dict[str, Any]) -> None:
    """The JSONL path and msgspec decoding alone, run in alternation (the
    load of a shared machine changes from second to second: each ratio
    compares runs made side by side); medians over ``runs``."""
    path, path_cpu, dec, dec_cpu, floor = [], [], [], [], []
    for _ in range(max(1, runs)):
        d, dc = _decode_rates(lines, 1)
        r, rc, n_out, n_dead = measure("jsonl", lines, 1)
        dec.append(d)
        dec_cpu.append(dc)
        path.append(r)
        path_cpu.append(rc)
        floor.append(_floor_rate(lines, 1))
    med = statistics.median
    out["jsonl_lines_per_s"] = out["records_per_s"] = round(med(path), 1)
    out["jsonl_cpu_lines_per_s"] = round(med(path_cpu), 1)
    out["msgspec_decode_records_per_s"] = round(med(dec), 1)
    out["ratio_to_msgspec_decode"] = round(med([p / d for p, d in zip(path, dec)]), 4)
    out["cpu_ratio_to_msgspec_decode"] = round(med([p / d for p, d in zip(path_cpu, dec_cpu)]), 4)
    out["jsonl_floor_cpu_lines_per_s"] = round(med(floor), 1)
    out["floor_cpu_ratio_to_msgspec_decode"] = round(
        med([f / d for f, d in zip(floor, dec_cpu)]), 4
    )
    if n_dead or n_out != len(lines):
        out["jsonl_dead_letters"] = n_dead
    out["jsonl_steps_cpu_ns_per_line"] = _steps(lines[:200_000], runs)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="lines per format")
    ap.add_argument("--runs", type=int, default=1, help="runs to take the median of")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"benchmark": "parse", "records": args.records, "runs": args.runs}
    for fmt in args.formats.split(","):
        lines = lines_for(fmt, args.records)
        if fmt == "jsonl":
            _jsonl(lines, args.runs, out)
            continue
        rate, cpu_rate, n_out, n_dead = measure(fmt, lines, args.runs)
        out[f"{fmt}_lines_per_s"] = round(rate, 1)
        out[f"{fmt}_cpu_lines_per_s"] = round(cpu_rate, 1)
        if n_dead or n_out != len(lines):
            out[f"{fmt}_dead_letters"] = n_dead
    out["peak_rss_kb"] = peak_rss_kb()
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
