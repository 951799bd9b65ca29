"""The public data sets in ``../shared/data`` (see its README for origins and licences)."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
IGLU = SHARED_DATA / "cgm" / "iglu_example_data_5_subject.csv"
IGLU_ZONE = "Etc/GMT+5"  # the file's times are local EST, UTC-05:00 without DST
IGLU_DUE_DATE = dt.date(2015, 11, 1)  # puts Feb–Jun 2015 inside the pregnancy window


def iglu_by_subject() -> dict[str, list[tuple[str, int]]]:
    """Subject → [(naive local ISO time, mg/dL)] in file order."""
    subjects: dict[str, list[tuple[str, int]]] = defaultdict(list)
    with IGLU.open(newline="") as handle:
        for row in csv.DictReader(handle):
            subjects[row["id"]].append((row["time"].replace(" ", "T"), int(row["gl"])))
    return dict(subjects)


def utc(naive_local: str, offset_hours: int = -5) -> dt.datetime:
    return (dt.datetime.fromisoformat(naive_local) - dt.timedelta(hours=offset_hours)).replace(tzinfo=dt.UTC)
