-- telemon schema, version 12: the team administers itself from the dashboard — a dietitian role, clinicians
-- invited by a one-time link, deactivated and reactivated, passwords reset by a one-time link, and an audit page.

-- Dietitians join the team: they read the patients and write notes, they do not prescribe.
ALTER TABLE clinicians DROP CONSTRAINT clinicians_role_check;
ALTER TABLE clinicians ADD CONSTRAINT clinicians_role_check
    CHECK (role IN ('diabetologist', 'midwife', 'nurse', 'admin', 'dietitian'));

-- When and by whom a clinician was deactivated (active false); reactivating clears both.
ALTER TABLE clinicians ADD COLUMN deactivated_at timestamptz;
ALTER TABLE clinicians ADD COLUMN deactivated_by text;

-- One-time links sent to a person: an invitation to join a team (which creates her account when used) or the reset
-- of an existing clinician's password. The link holds a selector (looked up) and a secret of 256 random bits of
-- which only the SHA-256 is kept, compared in constant time; a copy of this table opens nothing. A link is used
-- once, closes at its expiry, and closes when a newer link of the same kind replaces it.
CREATE TABLE clinician_links (
    id            uuid PRIMARY KEY,
    purpose       text NOT NULL CHECK (purpose IN ('invitation', 'password_reset')),
    selector      text NOT NULL UNIQUE,
    secret_hash   bytea NOT NULL,
    team_id       uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    email         text NOT NULL,
    role          text,                                  -- an invitation's role
    language      text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    clinician_id  uuid REFERENCES clinicians (id) ON DELETE CASCADE,  -- a reset's clinician; an invitation's, once used
    created_by    text NOT NULL,                         -- 'clinician:<uuid>' or 'cli'
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    closed_at     timestamptz,                           -- used, replaced or cancelled
    CHECK ((purpose = 'invitation') = (role IS NOT NULL)),
    CHECK (purpose = 'invitation' OR clinician_id IS NOT NULL)
);
-- At most one open invitation per address and one open reset per clinician: a new one replaces the old.
CREATE UNIQUE INDEX clinician_links_open_invitation ON clinician_links (lower(email))
    WHERE purpose = 'invitation' AND closed_at IS NULL;
CREATE UNIQUE INDEX clinician_links_open_reset ON clinician_links (clinician_id)
    WHERE purpose = 'password_reset' AND closed_at IS NULL;
CREATE INDEX clinician_links_team ON clinician_links (team_id, created_at);

-- The audit page filters by actor and pages by id, newest first.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
