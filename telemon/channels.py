"""The PostgreSQL NOTIFY channels the domains announce on and the dashboard listens to, named once.

- ``ALERTS``: alert changes (alerts.store), payload ``{"id", "patient_id", "rule", "severity", "status",
  "change"}``;
- ``READINGS``: readings or measurements of the other kinds stored (ingest), payload ``{"patient_ids": [...]}``;
- ``MESSAGES``: a message sent (clinic.messages), payload ``{"patient_id", "id", "author"}``, or messages read by
  the other side, payload ``{"patient_id", "read": <author of the messages read>, "ids": [...]}``;
- ``DEVICES``: a device created, rotated or revoked (a trigger on ``devices``, migration 0019), no payload: the
  broker's logins changed (telemon.broker_logins);
- ``WEBHOOKS``: webhook deliveries are due (the triggers of migration 0020, a re-send), no payload.
"""

from __future__ import annotations

ALERTS = "telemon_alerts"
READINGS = "telemon_readings"
MESSAGES = "telemon_messages"
DEVICES = "telemon_devices"
WEBHOOKS = "telemon_webhooks"
