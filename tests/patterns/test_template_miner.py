"""The miner's stream properties: bounded memory, stable ids, masking, stack traces."""

from __future__ import annotations

import random
import string

import msgspec
import pytest
from _loghub_data import SYSTEMS, load
from hypothesis import given, settings
from hypothesis import strategies as st

from srestream.patterns import TemplateMiner, Tokenizer, mask_token, template_id_for


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))


def distinct_lines(n: int, seed: int = 1):
    """``n`` lines made of random words (no digits, so nothing is masked):
    almost every line is a template of its own."""
    rng = random.Random(seed)
    for _ in range(n):
        yield " ".join(_word(rng) for _ in range(rng.randint(2, 12)))


def test_cluster_count_stays_bounded_on_an_unbounded_stream() -> None:
    miner = TemplateMiner(max_clusters=1000)
    peak_nodes = 0
    for i, line in enumerate(distinct_lines(200_000)):
        miner.add(line)
        if i % 10_000 == 9_999:
            stats = miner.statistics()
            assert stats["clusters"] <= 1000
            peak_nodes = max(peak_nodes, stats["tree_nodes"])
    stats = miner.statistics()
    assert stats["clusters"] == 1000
    assert stats["evictions"] >= 190_000
    # Every cache is bounded too: memory does not grow with the stream.
    tok = miner.tokenizer
    assert stats["cached_lines"] <= tok.max_line_cache
    assert stats["cached_tokens"] <= 2 * (tok.max_cache + 1)
    assert stats["cached_token_sequences"] <= miner.max_line_cache
    # The tree is pruned with its clusters: a few nodes per live cluster at most.
    assert peak_nodes <= 1000 * 3 + 20


def test_least_recently_matched_template_is_evicted_first() -> None:
    miner = TemplateMiner(max_clusters=2)
    a = miner.add("alpha service started")[0]
    miner.add("beta queue drained")
    miner.add("alpha service started")  # alpha is now the most recent
    miner.add("gamma disk full")  # evicts beta
    live = {c.template for c in miner.clusters()}
    assert live == {"alpha service started", "gamma disk full"}
    assert miner.get(a.template_id) is a


def test_evicted_template_comes_back_with_the_same_id() -> None:
    miner = TemplateMiner(max_clusters=1)
    first = miner.add("cache warmup finished")[0].template_id
    miner.add("totally different event text")
    again = miner.add("cache warmup finished")[0].template_id
    assert again == first == template_id_for(("cache", "warmup", "finished"))


def _run(miner: TemplateMiner, lines: list[str]) -> list[str]:
    return [miner.add(m)[0].template_id for m in lines]


@pytest.mark.parametrize("max_clusters", [10_000, 40])
def test_ids_are_stable_across_snapshot_and_restore(max_clusters: int) -> None:
    lines = [m for s in ("Hadoop", "OpenSSH", "Linux") for m in load(s)[0]]
    random.Random(3).shuffle(lines)
    whole = _run(TemplateMiner(max_clusters=max_clusters), lines)

    first = TemplateMiner(max_clusters=max_clusters)
    head = _run(first, lines[:2500])
    # Through the wire format a checkpoint uses (msgpack), into a new process-like miner.
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    second = TemplateMiner(max_clusters=max_clusters)
    second.restore(state)
    assert second.snapshot() == first.snapshot()
    tail = _run(second, lines[2500:])
    assert head + tail == whole


def test_restore_refuses_an_unknown_snapshot_version() -> None:
    with pytest.raises(ValueError, match="snapshot version"):
        TemplateMiner().restore({"version": 99, "clusters": [], "seq": 0})


def test_same_input_gives_same_ids_in_a_fresh_miner() -> None:
    lines = load("Zookeeper")[0]
    assert _run(TemplateMiner(), lines) == _run(TemplateMiner(), lines)


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("10.251.73.220:50010", "<IP>"),
        ("/10.0.0.1", "<IP>"),
        ("fe80::1ff:fe23:4567:890a", "<IP>"),
        ("42", "<NUM>"),
        ("-3.5e-4", "<NUM>"),
        ("0x7f3a", "<HEX>"),
        ("deadbeef0042", "<HEX>"),
        ("123e4567-e89b-12d3-a456-426614174000", "<UUID>"),
        ("250ms", "<DURATION>"),
        ("1.5s,", "<DURATION>,"),
        ("64MB", "<SIZE>"),
        ("/var/log/app-7.log", "/var/log/<ID>"),
        ("https://example.com/api/v1/users/42", "https://example.com/api/v1/users/<NUM>"),
        ("/user/root/_task_200811092030_0001_m_000590_0/part-00590", "/user/root/<ID>/<ID>"),
        ("attempt_1445144423722_0020_m_000000_0", "<ID>"),
        ("uid=0", "uid=<NUM>"),
        ("[1]", "[<NUM>]"),
        ("onExtend:1514038530000", "onExtend:<NUM>"),
        ("12:30:45", "<TIME>"),
        ("2015-10-18T18:01:47.978Z", "<TIME>"),
        ("started", "started"),
        ("logname=", "logname="),
    ],
)
def test_generic_masks(token: str, masked: str) -> None:
    assert mask_token(token) == masked


def test_one_configuration_masks_every_system_without_digits_left_in_variables() -> None:
    """After masking, no token of any Loghub system keeps a digit: numbers,
    ids, addresses never split templates, whatever the system."""
    miner = TemplateMiner()
    for system in SYSTEMS:
        for message in load(system)[0][:300]:
            tokens = miner.tokenizer.tokens(message)
            assert not any(ch.isdigit() for t in tokens for ch in t), (system, message, tokens)


JAVA_TRACE = """java.lang.IllegalStateException: pool exhausted after {n} retries
\tat com.acme.db.Pool.acquire(Pool.java:{line})
\tat com.acme.api.Handler.handle(Handler.java:88)
{extra}Caused by: java.net.SocketTimeoutException: connect timed out
\tat java.net.Socket.connect(Socket.java:589)
\t... {more} more"""

PY_TRACE = """Traceback (most recent call last):
  File "/srv/app/handler.py", line {line}, in handle
    result = pool.acquire()
  File "/srv/app/pool.py", line 12, in acquire
    raise {exc}("pool exhausted after {n} retries")
{exc}: pool exhausted after {n} retries"""


def test_a_stack_trace_is_one_record_with_one_template() -> None:
    miner = TemplateMiner()
    a = miner.add(JAVA_TRACE.format(n=3, line=41, extra="", more=12))[0]
    deeper = "\tat com.acme.api.Router.route(Router.java:20)\n"
    b = miner.add(JAVA_TRACE.format(n=5, line=97, extra=deeper, more=30))[0]
    assert a is b
    assert "SocketTimeoutException" in a.template and "Pool.java" not in a.template
    other = JAVA_TRACE.replace("IllegalStateException", "NullPointerException")
    c = miner.add(other.format(n=3, line=41, extra="", more=12))[0]
    assert c is not a

    p1 = miner.add(PY_TRACE.format(line=10, exc="TimeoutError", n=2))[0]
    p2 = miner.add(PY_TRACE.format(line=99, exc="TimeoutError", n=7))[0]
    p3 = miner.add(PY_TRACE.format(line=10, exc="KeyError", n=2))[0]
    assert p1 is p2 and p3 is not p1
    assert "TimeoutError: pool exhausted after <NUM> retries" in p1.template


def test_enum_values_stay_part_of_the_template() -> None:
    miner = TemplateMiner()
    run = miner.add("task_1 Task Transitioned from SCHEDULED to RUNNING")[0]
    done = miner.add("task_2 Task Transitioned from RUNNING to SUCCEEDED")[0]
    again = miner.add("task_9 Task Transitioned from SCHEDULED to RUNNING")[0]
    assert run is again and done is not run
    users = [miner.add(f"Invalid user {u} from 10.0.0.{i}")[0] for i, u in enumerate("ab")]
    assert users[0] is users[1] and users[0].template == "Invalid user <*> from <IP>"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        TemplateMiner(similarity_threshold=1.5)
    with pytest.raises(ValueError):
        TemplateMiner(depth=2)
    with pytest.raises(ValueError):
        TemplateMiner(max_clusters=0)


def test_a_number_and_its_unit_are_one_variable() -> None:
    tok = TemplateMiner().tokenizer
    a = tok.tokens("Block rdd_2_1 stored as bytes in memory (estimated size 1024.0 B, free 3.4 KB)")
    b = tok.tokens(
        "Block rdd_7_3 stored as bytes in memory (estimated size 16.2 KB, free 317.5 MB)"
    )
    assert a == b
    assert a[-4:] == ("size", "<SIZE>,", "free", "<SIZE>)")
    assert tok.tokens("request took 250 ms") == ("request", "took", "<DURATION>")
    # A list of like ids is one variable, whatever its length.
    assert tok.tokens("ask 10.0.0.1:50010 to delete blk_1 blk_2 blk_3") == tok.tokens(
        "ask 10.0.0.2:50010 to delete blk_9"
    )


def test_values_of_the_same_key_generalise_to_key_wildcard() -> None:
    miner = TemplateMiner()
    a = miner.add("login failed tty=NODEVssh rhost=example.org")[0]
    b = miner.add("login failed tty=NODEVssh rhost=other.example.net")[0]
    c = miner.add("login failed tty=pts rhost=third.example.com")[0]
    assert a is b is c
    assert a.template == "login failed tty=<*> rhost=<*>"


def test_a_key_left_empty_is_not_the_same_event_as_a_key_with_a_value() -> None:
    miner = TemplateMiner()
    a = miner.add("check pass; tty=ssh rhost=10.0.0.1")[0]
    b = miner.add("check pass; tty=console rhost=")[0]
    assert a is not b
    assert a.template == "check pass; tty=ssh rhost=<IP>"


def test_caches_are_transparent() -> None:
    """The token caches and the line cache change speed, never results."""
    lines = [m for s in SYSTEMS for m in load(s)[0][::4]]
    warm = TemplateMiner()
    cold = TemplateMiner(max_line_cache=1)
    assert _run(warm, lines + lines) == _run(cold, lines + lines)
    assert warm.cache_hits > len(lines)  # the second pass is served from the cache
    fresh = [TemplateMiner().tokenizer.tokens(m) for m in lines]
    assert [warm.tokenizer.tokens(m) for m in lines] == fresh


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "12",
                "KB",
                "ms",
                "B,",
                "x",
                "<",
                "5",
                "size",
                "1.5",
                "MB)",
                "10.0.0.1:80",
                "blk_1",
                "blk_-22",
                "a=1",
                "a=",
                "/v1/u/7",
                "0x1f",
                "1x1f",
                "0x2f",
                "RUNNING",
                "(uid=0)",
                "v0.5/a/9",
                "v0.7/a/9",
                "api/v3/9",
                "api/v4/9",
            ]
        ),
        min_size=1,
        max_size=12,
    )
)
def test_tokenizing_with_a_warm_cache_equals_a_cold_one(words: list[str]) -> None:
    line = " ".join(words)
    assert _WARM.tokens(line) == Tokenizer().tokens(line)


_WARM = Tokenizer()


def test_a_written_date_is_one_time_variable() -> None:
    tok = TemplateMiner().tokenizer
    a = tok.tokens("connection from 10.1.2.3 () at Sun Jul  3 22:05:41 2005")
    b = tok.tokens("connection from 10.9.8.7 () at Tue Aug 16 04:11:02 2005")
    assert a == b == ("connection", "from", "<IP>", "()", "at", "<TIME>")
    assert tok.tokens("backup done on Mar 3, 2024") == ("backup", "done", "on", "<TIME>")
    # A name alone is a word: "May" without a number is not a date.
    assert tok.tokens("May I retry") == ("May", "I", "retry")


def test_text_around_a_variable_is_part_of_the_event() -> None:
    miner = TemplateMiner()
    a = miner.add("session opened for user root by (uid=0)")[0]
    b = miner.add("session opened for user news by (uid=9)")[0]
    c = miner.add("session opened for user root by LOGIN(uid=0)")[0]
    assert a is b and c is not a
    assert a.template == "session opened for user <*> by (uid=<NUM>)"
    # Paths vary in depth within one event.
    d = miner.add("Deleting block blk_1 file /data/current/subdir7/blk_1")[0]
    e = miner.add("Deleting block blk_2 file /data/current/subdir7/subdir3/blk_2")[0]
    assert d is e
