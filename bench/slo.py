"""Benchmark of the SLO engine's streaming heart: SLI windows + burn rate.

Input: ``--records`` JSON log lines generated deterministically (seeded)
and cached under ``bench/.cache/slo/``: 100 services, two hours of event
time whatever the count (1M lines: 7.2 ms apart), statuses with 0.05%
server errors (a 10-minute outage of 5 services at 60% of the time),
latencies exponential around 40 ms.
Three SLOs per service (availability status < 500, latency <= 300 ms,
a ratio SLI on a parser-kept attribute): 300 (SLO, service) keys.

Figures (medians of ``--runs``):

* ``records_per_s``: decode -> normalize (``parse_json``: LogRecord) ->
  ``sli_windows`` -> ``burn_rate``, batches of 1024 lines already in memory;
* ``msgspec_decode_records_per_s``: ``msgspec.json.Decoder().decode`` of the
  same lines one by one, alone; ``ratio_to_msgspec_decode`` the ratio;
* ``windows_burn_records_per_s``: windows + burn rate alone on the
  already-normalized LogRecords (the engine's own cost), and its two
  parts ``windows_records_per_s`` and ``burn_records_per_s`` (the burn
  rate's cost per input record: it sees one rollup per key and minute);
* ``parse_records_per_s``: decode + normalize alone;
* ``engine_batch_p99_ms``: p99 time of windows + burn rate on one batch of
  1024 records (the engine's share of a record's latency in a pipeline);
* ``alerts``, ``budgets``, ``rollups``: what the run produced (sanity);
* ``state_bytes``: size of the msgpack snapshot of both stages after the run;
* ``peak_rss_kb``.

Run: ``python -m bench.slo [--records 1000000] [--runs 3]``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from bench._common import CACHE, arg_parser, decode_rate, median, percentiles, read_lines, result

DEFAULT_RECORDS = 1_000_000
BATCH = 1024
SERVICES = 100
SPAN_S = 2 * 3600
START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
ROUTES = ("/api/v1/cart", "/api/v1/checkout", "/api/v1/items", "/health")


def _iso(t: float) -> str:
    ms = int(t * 1000) % 1000
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def generate(n: int, seed: int = 11) -> list[bytes]:
    """``n`` JSON log lines, the same for the same arguments."""
    rnd = random.Random(seed)
    step = SPAN_S / max(1, n)
    outage = (START + 0.6 * SPAN_S, START + 0.6 * SPAN_S + 600)
    broken = {f"svc-{i:03d}" for i in range(0, SERVICES, SERVICES // 5)}
    out: list[bytes] = []
    add = out.append
    dumps = json.dumps
    for i in range(n):
        t = START + i * step
        svc = f"svc-{rnd.randrange(SERVICES):03d}"
        if outage[0] <= t < outage[1] and svc in broken:
            status = 503 if rnd.random() < 0.5 else 200
        else:
            status = 500 if rnd.random() < 0.0005 else (404 if rnd.random() < 0.03 else 200)
        lat = round(rnd.expovariate(1 / 40), 3)
        add(dumps({"ts": _iso(t), "service": svc, "level": "info", "msg": "request handled",
                   "status": status, "latency_ms": lat, "route": rnd.choice(ROUTES)},
                  separators=(",", ":")).encode())
    return out


def _cached(n: int) -> list[bytes]:
    path = CACHE / "slo" / f"logs-{n}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"\n".join(generate(n)) + b"\n")
        tmp.replace(path)
    return read_lines(path)


def slo_document() -> dict[str, Any]:
    slos = []
    for i in range(SERVICES):
        svc = f"svc-{i:03d}"
        slos += [
            {"name": "availability", "service": svc, "objective": 99.9, "period": "30d",
             "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}}},
            {"name": "latency", "service": svc, "objective": 99.0, "period": "30d",
             "sli": {"kind": "latency", "total": {"status": {"lt": 500}}, "threshold": "300ms"}},
            {"name": "checkout_success", "service": svc, "objective": 99.5, "period": "7d",
             "sli": {"kind": "ratio", "total": {"attrs.route": "/api/v1/checkout"},
                     "good": {"status": {"lt": 500}}}},
        ]
    return {"slos": slos}


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import time

    from srestream._component import Outputs
    from srestream._records import RawLine
    from srestream.parse._json import parse_json_batch
    from srestream.slo import Alert, Budget, BurnRateDetector, SliWindows, parse_slos

    args = arg_parser(__doc__ or "", DEFAULT_RECORDS).parse_args(argv)
    lines = _cached(args.records)
    texts = [ln.decode() for ln in lines]
    raw_batches = _batches([RawLine(source="logs.jsonl", position=i + 1, offset=0, text=t)
                            for i, t in enumerate(texts)])
    slos = parse_slos(slo_document())

    batch_ms: list[float] = []

    def run() -> tuple[float, float, float, list[Any], SliWindows, BurnRateDetector]:
        """One streaming pass, batch by batch; (parse seconds, engine seconds, ...)."""
        outputs = Outputs("parse")
        win = SliWindows(slos, allowed_lateness_ns=5_000_000_000)
        burn = BurnRateDetector(slos)
        out: list[Any] = []
        clock = time.perf_counter
        parse_s = engine_s = windows_s = 0.0
        for b in raw_batches:
            t0 = clock()
            recs = parse_json_batch(b, outputs)
            t1 = clock()
            rollups = win.process(recs)
            win.outputs.take()
            t2 = clock()
            out += burn.process(rollups)
            dt = clock() - t1
            windows_s += t2 - t1
            engine_s += dt
            batch_ms.append(dt * 1000)
            parse_s += t1 - t0
        t1 = clock()
        rollups = win.flush()
        t2 = clock()
        out += burn.process(rollups)
        out += burn.flush()
        engine_s += clock() - t1
        windows_s += t2 - t1
        return parse_s, engine_s, windows_s, out, win, burn

    full, parse_t, engine_t, windows_t, burn_t = [], [], [], [], []
    produced: list[Any] = []
    win = burn = None
    for _ in range(max(1, args.runs)):
        t0 = time.perf_counter()
        p_s, e_s, w_s, produced, win, burn = run()
        full.append(time.perf_counter() - t0)
        parse_t.append(p_s)
        engine_t.append(e_s)
        windows_t.append(w_s)
        burn_t.append(e_s - w_s)
    n = len(lines)
    assert win is not None and burn is not None
    state = len(msgspec.msgpack.encode([win.snapshot(), burn.snapshot()]))
    dec = decode_rate(lines, args.runs)
    return result(
        "slo",
        records=n,
        seconds=median(full),
        decode_records_per_s=dec,
        runs=args.runs,
        windows_burn_records_per_s=round(n / median(engine_t), 1),
        windows_records_per_s=round(n / median(windows_t), 1),
        burn_records_per_s=round(n / median(burn_t), 1),
        parse_records_per_s=round(n / median(parse_t), 1),
        engine_batch_p99_ms=round(percentiles(batch_ms, (99,))[99], 3),
        slo_keys=len(slos.slos),
        alerts=sum(1 for r in produced if isinstance(r, Alert)),
        budgets=sum(1 for r in produced if isinstance(r, Budget)),
        rollups=win.rollups_out,
        late=win.late_records,
        state_bytes=state,
        run_seconds=[round(x, 3) for x in full],
    )


if __name__ == "__main__":
    print(json.dumps(main()))
