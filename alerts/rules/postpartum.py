"""After delivery: the postpartum glucose test is due (info).

Monitoring ends at delivery, but a woman who had gestational diabetes needs a glucose test after the birth: ADA
asks for a 75 g OGTT 4–12 weeks postpartum, NICE for a fasting plasma glucose 6–13 weeks after the birth, the
French recommendation for a 75 g OGTT at the postnatal visit (6–8 weeks). The windows are the profiles'
(:mod:`alerts.profiles`). Not stateful: the alert stays until a clinician resolves it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import Candidates, Cohort, record_of
from alerts.rules.build import NO_READINGS, Out, date, lazy
from alerts.rules.segments import derived


def postpartum_test_due(c: Cohort) -> Candidates:
    """Delivery recorded and today inside the profile's postpartum glucose test window (ADA 4–12 weeks, NICE
    6–13, FR 6–8) and no postpartum test recorded: info, episode "postpartum" (not stateful: it stays until a clinician
    resolves it)."""
    d = derived(c)
    days = c.today.astype(np.int64) - c.delivery_day.astype(np.int64)
    prof = c.profile.astype(np.int64)
    fire = d.delivered & (days >= P.PROFILE_POSTPARTUM_START[prof]) & (days <= P.PROFILE_POSTPARTUM_END[prof])
    fire &= ~record_of(c).postpartum_tested  # the test is recorded (table postpartum_tests): nothing is due

    def build() -> list[Out]:
        out: list[Out] = []
        for p in np.flatnonzero(fire):
            pr = P.PROFILES[int(c.profile[p])]
            dd = int(c.delivery_day[p])
            facts: dict[str, Any] = {
                "delivery_date": date(dd),
                "days_since_delivery": int(days[p]),
                "window_start_date": date(dd + pr.postpartum_start_days),
                "window_end_date": date(dd + pr.postpartum_end_days),
                "profile": pr.code,
            }
            evidence = NO_READINGS | facts | {"test": pr.postpartum_test_en}
            params = facts | {"source": pr.source}
            out.append(("info", "postpartum", evidence, "postpartum_test_due", params))
        return out

    return lazy("postpartum_test_due", np.flatnonzero(fire), build)
