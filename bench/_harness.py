"""The one benchmark entry point: ``python -m bench [NAME ...]``.

Every module ``bench/<name>.py`` (other than the ``_private`` ones) is a
benchmark exposing ``main(argv) -> dict`` and printing that dict as JSON.
The harness:

1. generates the standard workload once (cached under ``bench/.cache/``) so
   no benchmark times the simulator by accident;
2. runs ``bench/baseline.py`` first (the plain-loop row every table shows),
   then each selected benchmark, each in a FRESH ``python -m bench.<name>``
   process, and takes that child's peak RSS from ``wait4`` itself; a module
   that had to generate a workload of its own (another size) is run again
   once it is cached, so generation is in neither its times nor its RSS;
3. prints a table (records/s, ratio to msgspec decoding alone, p50/p99
   record→alert latency where the module reports it, peak RSS) and, with
   ``--json FILE``, every figure of every module.

``--quick`` runs small sizes (``--records 20000``); ``--records N`` sets it.
``--update-readme`` writes the table into ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import DEFAULT_RECORDS, GENERATED_MARK, QUICK_RECORDS, workload

__all__ = ["discover", "main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = HERE / "README.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def discover() -> list[str]:
    """Benchmark module names, sorted (every ``bench/*.py`` not starting with ``_``)."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def _first(fig: dict[str, Any], names: tuple[str, ...], prefix: str = "", suffix: str = "") -> Any:
    for n in names:
        if fig.get(n) is not None:
            return fig[n]
    if prefix or suffix:
        for k, v in fig.items():
            if (
                k.startswith(prefix)
                and k.endswith(suffix)
                and isinstance(v, int | float)
                and not isinstance(v, bool)
                and "decode" not in k.removeprefix("ratio_to_msgspec")
            ):
                return v
    return None


def headline(fig: dict[str, Any]) -> dict[str, Any]:
    """The table's columns out of a module's figures (tolerating variant names)."""
    out = {
        "records": _first(fig, ("records", "lines")),
        "records_per_s": _first(
            fig, ("records_per_s", "lines_per_s", "end_to_end_records_per_s"), suffix="_per_s"
        ),
        "ratio_to_msgspec_decode": _first(
            fig, ("ratio_to_msgspec_decode", "ratio_to_decode"), prefix="ratio_to_msgspec"
        ),
        "p50_latency_ms": _first(fig, ("p50_latency_ms", "p50_ms"), prefix="p50", suffix="_ms"),
        "p99_latency_ms": _first(fig, ("p99_latency_ms", "p99_ms"), prefix="p99", suffix="_ms"),
    }
    decode = _first(fig, ("msgspec_decode_records_per_s", "msgspec_decode_lines_per_s"))
    if out["ratio_to_msgspec_decode"] is None and decode and out["records_per_s"]:
        out["ratio_to_msgspec_decode"] = round(out["records_per_s"] / decode, 4)
    return out


def run_one(name: str, argv: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m bench.<name> ARGV`` in a fresh process."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", f"bench.{name}", *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        status, rusage, timed_out = None, None, False
        while status is None:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, rusage = st, ru
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                timed_out = True
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    figures: dict[str, Any] | None = None
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                figures = json.loads(line)
                break
            except ValueError:
                continue
    ok = proc.returncode == 0 and figures is not None and not timed_out
    row: dict[str, Any] = {
        "benchmark": name,
        "ok": ok,
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "wall_seconds": round(wall, 2),
        "peak_rss_kb": rusage.ru_maxrss if rusage else None,
        **headline(figures or {}),
        "figures": figures,
        "generated_workload": GENERATED_MARK in stderr,
    }
    if not ok:
        row["error"] = (stderr.strip().splitlines() or ["no output"])[-1][:300]
    return row


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "ratio":
        return f"{v:.3f}"
    if kind == "ms":
        return f"{v:.2f}"
    if kind == "mib":
        return f"{v / 1024:,.0f}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("benchmark", "benchmark", "str"),
        ("records", "records", "int"),
        ("records/s", "records_per_s", "int"),
        ("x decode", "ratio_to_msgspec_decode", "ratio"),
        ("p50 ms", "p50_latency_ms", "ms"),
        ("p99 ms", "p99_latency_ms", "ms"),
        ("peak RSS MiB", "peak_rss_kb", "mib"),
        ("wall s", "wall_seconds", "str"),
    ]
    cells = [[h for h, _, _ in cols]]
    for r in rows:
        line = [_fmt(r.get(k), kind) for _, k, kind in cols]
        if not r["ok"]:
            line[2] = "FAILED" if not r["timed_out"] else "TIMEOUT"
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    out = []
    for j, c in enumerate(cells):
        out.append(
            "| "
            + " | ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(c, widths, strict=True))
            )
            + " |"
        )
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _update_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{README}: markers {BEGIN} / {END} not found")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"small sizes (--records {QUICK_RECORDS})")
    ap.add_argument("--records", type=int, default=None, help="workload size passed to each module")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument(
        "--render",
        metavar="FILE",
        help="print (and with --update-readme, write) the table of "
        "an earlier --json FILE instead of running",
    )
    ap.add_argument(
        "--update-readme", action="store_true", help="write the table into bench/README.md"
    )
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        text = table(saved["results"])
        print(text)
        if args.update_readme:
            _update_readme(_caption(saved) + text)
        return 0
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = [n for n in args.names if n not in names]
    if unknown:
        print(
            f"python -m bench: unknown benchmark(s) {', '.join(unknown)}; "
            f"available: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    selected = [n for n in (args.names or names) if n != "baseline"]
    records = args.records if args.records is not None else (QUICK_RECORDS if args.quick else None)
    child_argv = ["--records", str(records)] if records is not None else []
    t0 = time.perf_counter()
    wl = workload(records if records is not None else DEFAULT_RECORDS)
    print(
        f"workload: {wl.records:,} records in {wl.dir} ({time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )
    rows = []
    for name in ["baseline", *selected]:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        row = run_one(name, child_argv, args.timeout)
        if row.pop("generated_workload"):
            print(f"  {name} generated its workload; running it again", file=sys.stderr)
            row = run_one(name, child_argv, args.timeout)
            row.pop("generated_workload")
        rows.append(row)
        if not rows[-1]["ok"]:
            print(f"  {name} failed: {rows[-1].get('error')}", file=sys.stderr)
    text = table(rows)
    print(text)
    meta = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "records_arg": records,
        "command": "python -m bench" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**meta, "results": rows}, f, indent=2)
            f.write("\n")
    if args.update_readme:
        _update_readme(_caption(meta) + text)
    return 0 if all(r["ok"] for r in rows) else 1


def _caption(meta: dict[str, Any]) -> str:
    return (
        f"Last run: {meta.get('date_utc')}, Python {meta.get('python')}, {meta.get('cpus')} CPUs "
        f"(shared machine), `{meta.get('command', 'python -m bench')}`:\n\n"
    )
