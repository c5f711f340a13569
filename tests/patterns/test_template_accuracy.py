"""Grouping Accuracy on the 8 Loghub-2k systems, one generic configuration.

The miner sees only each line's message (the Content column), in file
order, online; the labels are used only here, to score.  Each system must
reach at least Drain's published GA (Drain was tuned per system), and the
mean must reach 0.95.
"""

from __future__ import annotations

import random

import pytest
from _loghub_data import DRAIN_GA, SYSTEMS, load

from srestream.patterns import TemplateMiner
from srestream.patterns._accuracy import grouping_accuracy, mine_ids

_cache: dict[str, list[str]] = {}


def _ids(system: str) -> list[str]:
    if system not in _cache:
        messages, _, _ = load(system)
        _cache[system] = mine_ids(messages, TemplateMiner())
    return _cache[system]


@pytest.mark.parametrize("system", SYSTEMS)
def test_grouping_accuracy_at_least_published_drain(system: str) -> None:
    _, labels, _ = load(system)
    ga = grouping_accuracy(labels, _ids(system))
    assert ga >= DRAIN_GA[system], f"{system}: GA {ga:.4f} < Drain's {DRAIN_GA[system]}"


def test_mean_grouping_accuracy_reaches_095() -> None:
    scores = {s: grouping_accuracy(load(s)[1], _ids(s)) for s in SYSTEMS}
    mean = sum(scores.values()) / len(scores)
    assert mean >= 0.95, scores


def test_mean_grouping_accuracy_on_corrected_labels() -> None:
    """The Loghub-2.0 corrected labels: same goal of 0.95 on the mean."""
    scores = {s: grouping_accuracy(load(s)[2], _ids(s)) for s in SYSTEMS}
    assert sum(scores.values()) / len(scores) >= 0.95, scores


def test_grouping_accuracy_metric_counts_whole_groups_only() -> None:
    # One stray line in a group makes every line of both groups wrong.
    assert grouping_accuracy(["a", "a", "a", "b"], [1, 1, 1, 1]) == 0.0
    assert grouping_accuracy(["a", "a", "a", "b"], [1, 1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "b", "b"], [1, 2, 3, 3]) == 0.5


def test_one_miner_for_all_systems_interleaved() -> None:
    """As in production: one miner sees every service's lines interleaved.
    Each system keeps its GA, and no template mixes lines of two systems."""
    data = {s: load(s) for s in SYSTEMS}
    miner = TemplateMiner()
    ids: dict[str, list[str]] = {s: [] for s in SYSTEMS}
    for i in range(2000):
        for s in SYSTEMS:
            ids[s].append(miner.add(data[s][0][i])[0].template_id)
    owners: dict[str, set[str]] = {}
    for s in SYSTEMS:
        assert grouping_accuracy(data[s][1], ids[s]) >= DRAIN_GA[s], s
        for tid in ids[s]:
            owners.setdefault(tid, set()).add(s)
    assert all(len(o) == 1 for o in owners.values())


@pytest.mark.parametrize("seed", [1, 2])
def test_grouping_accuracy_does_not_hang_on_line_order(seed: int) -> None:
    """Online mining depends on arrival order; in a shuffled order every
    system still reaches Drain's published GA (which was in file order)."""
    scores = {}
    for system in SYSTEMS:
        messages, labels, _ = load(system)
        order = list(range(len(messages)))
        random.Random(seed).shuffle(order)
        ids = mine_ids([messages[i] for i in order], TemplateMiner())
        scores[system] = grouping_accuracy([labels[i] for i in order], ids)
    assert all(scores[s] >= DRAIN_GA[s] for s in SYSTEMS), scores
