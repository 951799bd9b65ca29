"""The PostgreSQL NOTIFY channels the domains announce on and the dashboard listens to, named once.

- ``ALERTS``: alert changes (alerts.store), payload ``{"id", "patient_id", "rule", "severity", "status",
  "change"}``;
- ``READINGS``: readings stored (ingest), payload ``{"patient_ids": [...]}``.
"""

from __future__ import annotations

ALERTS = "telemon_alerts"
READINGS = "telemon_readings"
