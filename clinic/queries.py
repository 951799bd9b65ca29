"""SQL of the clinic's API that is not a record's own (those are in ``telemon.queries``): the lists, and the
per-address limit on pairing attempts. Values go in as parameters only."""

from telemon.queries import PATIENT_RECORD_COLUMNS

# The patients of care teams $1, by last change then id (a client that fetches what changed since its last call
# follows the cursor to the end): $2 'active', 'archived' or 'all'; $3 changed at or after this time (or null);
# after the position ($4, $5); $6 rows.
LIST_PATIENTS = f"""
SELECT {PATIENT_RECORD_COLUMNS}
FROM patients
WHERE team_id = ANY($1::uuid[])
  AND ($2 = 'all' OR ($2 = 'active') = (archived_at IS NULL))
  AND ($3::timestamptz IS NULL OR updated_at >= $3)
  AND (updated_at, id) > ($4, $5)
ORDER BY updated_at, id
LIMIT $6
"""


# Failed pairing attempts of address $1 in the current window of $2 seconds, and the seconds left in it.
PAIRING_FAILURES = """
WITH w AS (SELECT date_bin(make_interval(secs => $2), now(), timestamptz '2000-01-01') AS start)
SELECT COALESCE((SELECT failures FROM pairing_attempts a, w WHERE a.address = $1 AND a.window_start = w.start), 0)
           AS failures,
       ceil(extract(epoch FROM (SELECT start FROM w) + make_interval(secs => $2) - now()))::int AS seconds_left
"""
# One more failed attempt of address $1 in the current window of $2 seconds; windows older than a day are dropped.
COUNT_PAIRING_FAILURE = """
WITH gone AS (DELETE FROM pairing_attempts WHERE window_start < now() - interval '1 day')
INSERT INTO pairing_attempts (address, window_start, failures)
VALUES ($1, date_bin(make_interval(secs => $2), now(), timestamptz '2000-01-01'), 1)
ON CONFLICT (address, window_start) DO UPDATE SET failures = pairing_attempts.failures + 1
"""
