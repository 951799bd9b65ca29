"""Alert severities, from the least to the most urgent: one order for the store, the API and the dashboard."""

from __future__ import annotations

from typing import Literal

Severity = Literal["info", "warning", "urgent"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "urgent")
# 0 info, 1 warning, 2 urgent: a higher rank is more urgent (the SQL's array_position order, less one).
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
