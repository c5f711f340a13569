"""Loading the Loghub-2k samples copied under tests/data/patterns."""

from __future__ import annotations

import csv
import pathlib
import sys

DATA = pathlib.Path(__file__).parent.parent / "data" / "patterns"

SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "Apache", "OpenSSH", "Linux", "HealthApp")

# Grouping Accuracy of Drain as published (Zhu et al., ICSE-SEIP 2019), each
# tuned per system; our miner runs one generic configuration everywhere.
DRAIN_GA = {
    "HDFS": 0.998,
    "Hadoop": 0.948,
    "Spark": 0.920,
    "Zookeeper": 0.967,
    "Apache": 1.000,
    "OpenSSH": 0.788,
    "Linux": 0.690,
    "HealthApp": 0.780,
}

csv.field_size_limit(sys.maxsize)


def load(system: str) -> tuple[list[str], list[str], list[str]]:
    """(messages, original labels, corrected labels), whitespace-normalised labels."""
    with open(DATA / f"{system}_2k.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return (
        [r["Content"] for r in rows],
        [" ".join(r["EventTemplate"].split()) for r in rows],
        [" ".join(r["EventTemplateCorrected"].split()) for r in rows],
    )
