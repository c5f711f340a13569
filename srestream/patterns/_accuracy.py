"""Grouping Accuracy (GA), the metric of the Loghub template-mining benchmark.

A line is grouped correctly when the set of lines its miner put in its
group equals the set of lines sharing its labelled template (Zhu et al.,
"Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019).

>>> grouping_accuracy(["a", "a", "b"], [1, 1, 2])
1.0
>>> grouping_accuracy(["a", "a", "b"], [1, 1, 1])
0.0
>>> grouping_accuracy(["a", "a", "b", "c"], [1, 1, 2, 2])
0.5
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

from ._miner import TemplateMiner

__all__ = ["grouping_accuracy", "mine_ids"]


def grouping_accuracy(labels: Sequence[Hashable], groups: Sequence[Hashable]) -> float:
    """GA of predicted ``groups`` against the labelled templates ``labels``."""
    if len(labels) != len(groups) or not labels:
        raise ValueError("labels and groups must be non-empty and of equal length")
    label_size = Counter(labels)
    group_size = Counter(groups)
    labels_of_group: dict[Hashable, set[Hashable]] = defaultdict(set)
    for g, lab in zip(groups, labels):
        labels_of_group[g].add(lab)
    correct = 0
    for g, labs in labels_of_group.items():
        if len(labs) == 1 and label_size[next(iter(labs))] == group_size[g]:
            correct += group_size[g]
    return correct / len(labels)


def mine_ids(messages: Sequence[str], miner: TemplateMiner | None = None) -> list[str]:
    """The template id the miner gives each message, as it arrives."""
    miner = miner if miner is not None else TemplateMiner()
    add = miner.add
    return [add(m)[0].template_id for m in messages]
