"""SQL of the webhook endpoints, their deliveries and the delivery log (telemon.webhooks, telemon.webhook_delivery).
The events themselves are written by triggers (migration 0020), in the transaction of each change."""

from __future__ import annotations

ENDPOINT_COLUMNS = "id, team_id, url, events, label, active, disabled_at, disabled_reason, created_by, created_at"

INSERT_ENDPOINT = f"""
INSERT INTO webhook_endpoints (id, team_id, url, events, secret, label, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {ENDPOINT_COLUMNS}
"""

# The endpoints of teams $1, with the last 24 hours' deliveries: delivered, failed, pending.
ENDPOINTS_OF_TEAMS = f"""
SELECT {ENDPOINT_COLUMNS},
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'delivered'
          AND d.created_at > now() - interval '24 hours') AS delivered_24h,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'failed'
          AND d.created_at > now() - interval '24 hours') AS failed_24h,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending
FROM webhook_endpoints e
WHERE team_id = ANY($1::uuid[])
ORDER BY created_at, id
"""

ENDPOINT = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND team_id = ANY($2::uuid[])"

# Turned off by an administrator ($2 the reason), or back on: its pending deliveries go out again at once.
DISABLE_ENDPOINT = """
UPDATE webhook_endpoints SET active = false, disabled_at = now(), disabled_reason = $2
WHERE id = $1 AND active
RETURNING id
"""
ENABLE_ENDPOINT = """
WITH enabled AS (
    UPDATE webhook_endpoints SET active = true, disabled_at = NULL, disabled_reason = NULL
    WHERE id = $1 AND NOT active
    RETURNING id
)
UPDATE webhook_deliveries d SET next_attempt_at = now()
FROM enabled WHERE d.endpoint_id = enabled.id AND d.status = 'pending'
RETURNING d.id
"""

# An endpoint's deliveries, newest first ($2 rows before delivery id $3, or the newest), with their attempts.
DELIVERY_LOG = """
SELECT d.id, d.status, d.attempts, d.next_attempt_at, d.delivered_at, d.created_at,
       ev.type, ev.message_id, ev.data,
       COALESCE((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'status_code', a.status_code,
                                                      'latency_ms', a.latency_ms, 'error', a.error)
                                  ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]'::jsonb) AS attempt_log
FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.endpoint_id = $1 AND ($3::bigint IS NULL OR d.id < $3)
ORDER BY d.id DESC
LIMIT $2
"""

# Send delivery $1 again now (a person asked): a delivered or failed one becomes pending with a new schedule.
RESEND = """
UPDATE webhook_deliveries d
SET status = 'pending', next_attempt_at = now(), delivered_at = NULL, scheduled_from = now()
FROM webhook_endpoints e
WHERE d.id = $1 AND e.id = d.endpoint_id AND e.team_id = ANY($2::uuid[])
RETURNING d.id
"""
ANNOUNCE = "SELECT pg_notify('telemon_webhooks', '')"  # telemon.channels.WEBHOOKS: deliveries are due

# Due deliveries of active endpoints, claimed for $2 seconds (a deliverer that dies mid-flight leaves them to be
# claimed again when the lease ends: at least once). Each claim is one attempt, logged before it is sent.
CLAIM_DUE = """
WITH due AS (
    SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.active
    ORDER BY d.next_attempt_at, d.id
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.scheduled_from
), logged AS (
    INSERT INTO webhook_attempts (delivery_id, attempt, latency_ms, error)
    SELECT id, attempts, 0, 'no answer recorded: the deliverer stopped during the attempt' FROM claimed
)
SELECT c.id, c.attempts, c.scheduled_from, e.url, e.secret, ev.message_id, ev.type, ev.data, ev.created_at AS event_at
FROM claimed c
JOIN webhook_endpoints e ON e.id = c.endpoint_id
JOIN webhook_events ev ON ev.id = c.event_id
"""

RECORD_ATTEMPT = """
UPDATE webhook_attempts SET status_code = $3, latency_ms = $4, error = $5, at = now()
WHERE delivery_id = $1 AND attempt = $2
"""
DELIVERED = "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now() WHERE id = $1"
RETRY_AT = "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1 AND status = 'pending'"
# The schedule is spent: the delivery failed, and its endpoint is disabled with the reason ($2).
GIVE_UP = """
WITH failed AS (
    UPDATE webhook_deliveries SET status = 'failed' WHERE id = $1 RETURNING endpoint_id
)
UPDATE webhook_endpoints e SET active = false, disabled_at = now(), disabled_reason = $2
FROM failed WHERE e.id = failed.endpoint_id AND e.active
RETURNING e.id, e.team_id
"""
# When the next delivery comes due (none: null), to sleep until then.
NEXT_DUE = """
SELECT min(d.next_attempt_at) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.status = 'pending' AND e.active
"""
