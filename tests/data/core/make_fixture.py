"""Regenerates app.jsonl: a deterministic recorded log for the core tests.

8,000 JSON log lines over 4 minutes of event time (30 ms apart) from four
services, with three malformed lines at known positions.
"""

from __future__ import annotations

import json
import pathlib
import random

HERE = pathlib.Path(__file__).parent
BAD = {1234: "{not json", 4777: '{"ts": "yesterday", "service": "api"}', 7000: "[1, 2, 3]"}


def main() -> None:
    rng = random.Random(7)
    services = ["frontend", "checkout", "payments", "inventory"]
    t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
    lines = []
    for i in range(1, 8_001):
        if i in BAD:
            lines.append(BAD[i])
            continue
        svc = services[i % 4]
        status = 500 if rng.random() < 0.02 else 200
        ms = t0 + i * 30
        ts = f"2026-01-01T00:{(ms - t0) // 60000:02d}:{(ms - t0) % 60000 / 1000:06.3f}Z"
        lines.append(
            json.dumps(
                {
                    "ts": ts,
                    "service": svc,
                    "level": "ERROR" if status >= 500 else "INFO",
                    "message": f"GET /api/{svc} {status}",
                    "status": status,
                    "latency_ms": round(rng.expovariate(1 / 40), 3),
                }
            )
        )
    (HERE / "app.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
