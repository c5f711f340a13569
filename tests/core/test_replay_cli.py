"""`srestream replay` end to end, in real subprocesses on real files."""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

DATA = pathlib.Path(__file__).parent.parent / "data" / "core"
PIPELINE = DATA / "replay.yaml"
LINES = (DATA / "app.jsonl").read_text().splitlines()
BAD_LINES = {1234, 4777, 7000}


def srestream(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "srestream", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,  # type: ignore[arg-type]
    )


def outputs(out: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("unbroken")
    r = srestream("replay", str(PIPELINE), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return outputs(out)


def test_replay_writes_records_and_dead_letters(unbroken: dict[str, bytes]) -> None:
    logs = [json.loads(x) for x in unbroken["logs.jsonl"].splitlines()]
    dead = [json.loads(x) for x in unbroken["deadletter.jsonl"].splitlines()]
    # Every valid line flows, in order; each bad one is a dead letter with where and why.
    assert [r["position"] for r in logs] == [i for i in range(1, len(LINES) + 1) if i not in BAD_LINES]
    assert {d["position"] for d in dead} == BAD_LINES
    for d in dead:
        assert d["source"] == "app.jsonl"
        assert d["raw"] == LINES[d["position"] - 1]
        assert d["stage"] == "parse"
        assert d["reason"]
    by_pos = {d["position"]: d["reason"] for d in dead}
    assert "malformed" in by_pos[1234]
    assert "yesterday" in by_pos[4777]
    assert "object" in by_pos[7000]
    # The output contract: RFC 3339 UTC with ms beside the ns integer.
    assert logs[0]["ts"] == "2026-01-01T00:00:00.030Z"
    assert logs[0]["ts_ns"] == 1_767_225_600_030_000_000


@pytest.mark.parametrize(
    ("batch", "speed"), [("1", None), ("7", None), ("1024", None), ("1024", "2000"), ("7", "600")]
)
def test_replay_is_byte_identical_at_any_batch_size_and_speed(
    tmp_path: pathlib.Path, unbroken: dict[str, bytes], batch: str, speed: str | None
) -> None:
    args = ["replay", str(PIPELINE), "--out", str(tmp_path), "--batch-size", batch, "--quiet"]
    if speed:
        args += ["--speed", speed]
    r = srestream(*args)
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path) == unbroken


def _start_slow_replay(out: pathlib.Path) -> subprocess.Popen[str]:
    # 4 minutes of event time at speed 2: two minutes of wall time if not stopped.
    return subprocess.Popen(
        [sys.executable, "-m", "srestream", "replay", str(PIPELINE), "--out", str(out),
         "--speed", "2", "--batch-size", "16", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_output(out: pathlib.Path, min_bytes: int = 2000, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    f = out / "logs.jsonl"
    while time.monotonic() < deadline:
        if f.exists() and f.stat().st_size >= min_bytes:
            return
        time.sleep(0.05)
    raise AssertionError(f"no output in {out} after {timeout}s")


def test_sigterm_then_resume_gives_exactly_the_unbroken_output(
    tmp_path: pathlib.Path, unbroken: dict[str, bytes]
) -> None:
    proc = _start_slow_replay(tmp_path)
    try:
        _wait_for_output(tmp_path)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    partial = (tmp_path / "logs.jsonl").read_bytes()
    assert 0 < len(partial) < len(unbroken["logs.jsonl"])  # it really stopped mid-run
    assert unbroken["logs.jsonl"].startswith(partial)  # what was written is whole lines, in order

    r = srestream("replay", str(PIPELINE), "--out", str(tmp_path), "--batch-size", "7")
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint" in r.stderr
    assert outputs(tmp_path) == unbroken  # none lost, none twice


def test_sigkill_then_resume_rolls_back_to_the_last_checkpoint(
    tmp_path: pathlib.Path, unbroken: dict[str, bytes]
) -> None:
    proc = _start_slow_replay(tmp_path)
    try:
        _wait_for_output(tmp_path, min_bytes=4000)
        time.sleep(0.3)  # let a checkpoint (every 200 ms) land, and records after it
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    r = srestream("replay", str(PIPELINE), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint" in r.stderr
    assert outputs(tmp_path) == unbroken


def test_a_finished_replay_starts_afresh(tmp_path: pathlib.Path, unbroken: dict[str, bytes]) -> None:
    for _ in range(2):
        r = srestream("replay", str(PIPELINE), "--out", str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert "resumed" not in r.stderr
        assert outputs(tmp_path) == unbroken


def test_bad_pipeline_reports_every_problem_with_its_path(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yaml"
    shutil.copy(DATA / "app.jsonl", tmp_path / "app.jsonl")
    bad.write_text(
        """\
name: broken
runtime:
  checkpoint_interval: 10
sources:
  app:
    type: replay
    paths: [app.jsonl]
    colour: blue
  more:
    type: kafka_magic
stages:
  parse:
    type: parse_json
    inputs: [app, nowhere]
  loop_a:
    type: passthrough
    inputs: [loop_b]
  loop_b:
    type: passthrough
    inputs: [loop_a]
  orphan:
    type: passthrough
sinks:
  out:
    type: directory
    path: 42
    inputs: [parse.nosuchport]
"""
    )
    r = srestream("validate", str(bad))
    assert r.returncode == 2
    err = r.stderr
    expected = [
        ("$.runtime.checkpoint_interval", "unit"),
        ("$.sources.app.colour", "unknown option"),
        ("$.sources.more.type", "unknown source type 'kafka_magic'"),
        ("$.stages.parse.inputs[1]", "unknown input 'nowhere'"),
        ("$.stages.orphan.inputs", "missing"),
        ("$.sinks.out.path", "Expected `str`, got `int`"),
        ("$.sinks.out.inputs[0]", "no side output 'nosuchport'"),
        ("cycle:", "loop_a"),
    ]
    for path, words in expected:
        line = next((ln for ln in err.splitlines() if path in ln), None)
        assert line is not None, f"{path} not reported in:\n{err}"
        assert words in line, line
    assert f"{bad}:" in err  # the file (and line) is named
    assert "8 problems" in err

    r = srestream("replay", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "8 problems" in r.stderr


def test_validate_and_components_succeed_on_a_good_file() -> None:
    r = srestream("validate", str(PIPELINE))
    assert r.returncode == 0 and "ok" in r.stdout
    r = srestream("components", "--options")
    assert r.returncode == 0
    for t in ("replay", "parse_json", "directory", "stdout", "stdin"):
        assert f"  {t} " in r.stdout


def test_stdin_to_stdout(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text(
        """
[sources.input]
type = "stdin"
[stages.parse]
type = "parse_json"
inputs = ["input"]
[sinks.console]
type = "stdout"
inputs = ["parse", "parse.deadletter"]
"""
    )
    feed = "\n".join(LINES[1230:1236]) + "\n"
    r = srestream("run", str(p), "--quiet", "--store", str(tmp_path / "s.sqlite"), input=feed)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == 6
    assert [o.get("reason") is not None for o in out].count(True) == 1
    assert {o["source"] for o in out} == {"stdin"}


def test_srestream_module_and_console_script_agree() -> None:
    exe = shutil.which("srestream")
    assert exe is not None
    r = subprocess.run([exe, "validate", str(PIPELINE)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0




def test_long_replays_show_a_progress_line_and_a_summary(tmp_path: pathlib.Path) -> None:
    r = srestream(
        "replay", str(PIPELINE), "--out", str(tmp_path), "--speed", "200", "--progress", "always"
    )
    assert r.returncode == 0, r.stderr
    # (text mode turns the progress line's carriage returns into newlines)
    progress = [ln for ln in r.stderr.splitlines() if "/s  lag" in ln]
    assert progress, r.stderr  # at least one progress update in ~1.2 s of replay
    assert "dead letters" in progress[-1]
    assert "pipeline 'core_replay' finished" in r.stderr
    assert "8,000 records in" in r.stderr and "3 dead letters" in r.stderr


def test_run_serves_its_statistics_on_metrics_addr(tmp_path: pathlib.Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = tmp_path / "p.yaml"
    p.write_text(
        "name: live\n"
        "sources: {input: {type: stdin}}\n"
        "stages: {parse: {type: parse_json, inputs: [input]}}\n"
        "sinks: {console: {type: stdout, inputs: [parse, parse.deadletter]}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "srestream", "run", str(p), "--quiet",
         "--store", str(tmp_path / "s.sqlite"), "--metrics-addr", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("\n".join(LINES[:10]) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                if 'component="parse",kind="stage"} 10' in body:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert 'srestream_stage_records_in_total{pipeline="live",component="parse",kind="stage"} 10' in body, body
        out, err = proc.communicate(timeout=20)  # closes stdin: the end of the input
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 10
