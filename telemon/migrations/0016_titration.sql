-- telemon schema, version 16: each care team's basal titration protocol, which the engine's dose_review rule
-- follows to suggest (never apply) a dose change.

-- One row per team that set its own protocol; a team without a row follows alerts.titration.DEFAULT. Steps and
-- doses are insulin units in half units (what pens dose); percentages are of the current dose. The checks repeat
-- alerts.titration.check, which words the refusals.
CREATE TABLE team_titration (
    team_id             uuid PRIMARY KEY REFERENCES care_teams (id) ON DELETE CASCADE,
    step_units          numeric(3, 1) CHECK (step_units BETWEEN 0.5 AND 10 AND step_units * 2 = trunc(step_units * 2)),
    step_percent        numeric(4, 1) CHECK (step_percent BETWEEN 1 AND 30),
    window_days         smallint NOT NULL CHECK (window_days BETWEEN 1 AND 14),
    days_required       smallint NOT NULL CHECK (days_required BETWEEN 1 AND 14),
    max_step_units      numeric(3, 1) NOT NULL
                        CHECK (max_step_units BETWEEN 0.5 AND 10 AND max_step_units * 2 = trunc(max_step_units * 2)),
    reduction_percent   numeric(4, 1) CHECK (reduction_percent BETWEEN 1 AND 50),
    reduction_units     numeric(3, 1)
                        CHECK (reduction_units BETWEEN 0.5 AND 10 AND reduction_units * 2 = trunc(reduction_units * 2)),
    suggestions_enabled boolean NOT NULL DEFAULT true,
    updated_by          text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (days_required <= window_days),
    CHECK (step_units IS NOT NULL OR step_percent IS NOT NULL),
    CHECK (reduction_units IS NOT NULL OR reduction_percent IS NOT NULL)
);
