"""The dashboard's pages against the real app and database, tested by parsing the HTML: sign-in, triage order,
team scoping of every page and action, units and language, CSRF refusal, lock-out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlencode

import asyncpg

from clinician_ui.sessions import account_key
from telemon.app.services import Services
from tests.test_ui_toolkit import (
    PASSWORD,
    Node,
    add_alert,
    add_readings,
    browser,
    csrf_of,
    form_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
    submit,
)

NOW = dt.datetime.now(dt.UTC)
HERE = "127.0.0.1"  # the client address of httpx's ASGI transport


async def test_pages_need_a_session_and_login_sets_a_safe_cookie(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    async with browser(services) as http:
        first = await http.get("/patients?q=x")
        assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Fpatients%3Fq%3Dx"
        assert (await http.get("/events")).status_code == 401
        page = parse_html((await http.get("/login")).text)
        assert page.one("label[for=email]") and page.one("input#password").get("type") == "password"
        signed = await login(http, email)
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "telemon_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        home = await http.get("/")
        assert home.status_code == 200
        assert "default-src 'self'" in home.headers["content-security-policy"]
        assert home.headers["cache-control"] == "no-store"
        assert parse_html(home.text).one("html").get("lang") == "en"
        stored = await db.fetchval(
            "SELECT count(*) FROM clinician_sessions s JOIN clinicians c ON c.id = s.clinician_id WHERE c.email = $1",
            email,
        )
        assert stored == 1
        # the cookie value itself is not stored, only its hash
        token = http.cookies.get("telemon_session")
        assert token and not await db.fetchval(
            "SELECT count(*) FROM clinician_sessions WHERE token_hash::text LIKE $1", f"%{token}%"
        )
        out = await http.post("/logout", data={"csrf_token": csrf_of(home.text)})
        assert out.status_code == 303
        assert (await http.get("/")).status_code == 303


async def test_an_off_site_next_is_ignored(services: Services, db: asyncpg.Pool) -> None:
    email = await make_clinician(db, await make_team(db))
    async with browser(services) as http:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
            token = csrf_of((await http.get("/login")).text)
            answer = await http.post(
                "/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": target}
            )
            assert answer.headers["location"] == "/"


async def test_triage_lists_who_needs_action_most_severe_first_then_oldest_and_only_the_team(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    a, _ = await make_patient(db, team, "A warning 3h")
    b, _ = await make_patient(db, team, "B urgent 1h")
    c, _ = await make_patient(db, team, "C urgent 5h")
    d, _ = await make_patient(db, team, "D info 9h")
    quiet, _ = await make_patient(db, team, "E nothing open")
    stranger, _ = await make_patient(db, other, "Z other team urgent")
    await add_alert(db, a, rule="fasting_above_target", severity="warning", opened_ago=dt.timedelta(hours=3))
    await add_alert(db, a, rule="low_adherence", severity="info", opened_ago=dt.timedelta(hours=20))
    await add_alert(db, b, severity="urgent", opened_ago=dt.timedelta(hours=1))
    await add_alert(db, c, severity="urgent", opened_ago=dt.timedelta(hours=5))
    await add_alert(db, c, rule="no_data", severity="warning", opened_ago=dt.timedelta(hours=30))
    await add_alert(db, d, rule="low_adherence", severity="info", opened_ago=dt.timedelta(hours=9))
    await add_alert(db, quiet, severity="urgent", status="resolved")
    await add_alert(db, stranger, severity="urgent", opened_ago=dt.timedelta(days=3))
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get("/")).text)
        rows = page.select("tr.triage-row")
        # an info alert alone (D) puts nobody on the list: it stays on the patient page
        assert [r.one("th a").text() for r in rows] == ["C urgent 5h", "B urgent 1h", "A warning 3h"]
        assert [r.get("data-severity") for r in rows] == ["urgent", "urgent", "warning"]
        # each row: its alerts most severe first, each with a word beside the colour, and an acknowledge button
        c_alerts = rows[0].select("li.alert-item")
        assert [li.get("data-rule") for li in c_alerts] == ["hypo_l2", "no_data"]
        assert c_alerts[0].one("span.badge").text() == "⚠ Urgent"
        assert "below 54 mg/dL" in c_alerts[0].one("span.message").text()
        action, fields = form_of(c_alerts[0].one("button"))
        assert action == "/alerts/acknowledge"
        assert ("alert_ids", c_alerts[0].get("data-alert-id")) in fields
        assert page.one("#triage-count").text() == "3 patients"
        # filters: severity, rule, not reviewed
        urgent = parse_html((await http.get("/?severity=urgent")).text).select("tr.triage-row th a")
        assert [n.text() for n in urgent] == ["C urgent 5h", "B urgent 1h"]
        by_rule = parse_html((await http.get("/?rule=low_adherence")).text).select("tr.triage-row th a")
        assert [n.text() for n in by_rule] == ["A warning 3h"]
        await db.execute("UPDATE patients SET last_reviewed_at = now() - interval '1 day' WHERE id = $1", c)
        await db.execute("UPDATE patients SET last_reviewed_at = now() - interval '10 days' WHERE id = $1", b)
        stale = parse_html((await http.get("/?unreviewed=7")).text).select("tr.triage-row th a")
        assert [n.text() for n in stale] == ["B urgent 1h", "A warning 3h"]
        # the second tab: every patient of the team, searchable
        everyone = parse_html((await http.get("/patients")).text)
        names = [n.text() for n in everyone.select("tr.patient-row th a")]
        assert names == ["A warning 3h", "B urgent 1h", "C urgent 5h", "D info 9h", "E nothing open"]
        found = parse_html((await http.get("/patients", params={"q": "urgent"})).text)
        assert [n.text() for n in found.select("tr.patient-row th a")] == ["B urgent 1h", "C urgent 5h"]
        assert not parse_html((await http.get("/patients", params={"q": "other team"})).text).select("tr.patient-row")
        assert not parse_html((await http.get("/patients", params={"q": "%"})).text).select("tr.patient-row")


async def test_acknowledge_from_the_list(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Léa M.")
    alert_id = await add_alert(db, patient)
    async with browser(services) as http:
        await login(http, email)
        home = await http.get("/")
        done = await submit(http, parse_html(home.text).one(f'li[data-alert-id="{alert_id}"] button'))
        assert done.status_code == 303 and done.headers["location"] == "/"
        after = parse_html((await http.get("/")).text)
        assert not after.select("tr.triage-row")
        assert after.one("p.flash").text() == "Alert acknowledged."
        row = await db.fetchrow("SELECT status, acknowledged_by FROM alerts WHERE id = $1", alert_id)
        assert row["status"] == "acknowledged" and row["acknowledged_by"].startswith("clinician:")
        audit = await db.fetchrow(
            "SELECT actor, action FROM audit_log WHERE patient_id = $1 AND action = 'alert.acknowledge'", patient
        )
        assert audit["actor"] == row["acknowledged_by"]
        shown = parse_html((await http.get("/?acknowledged=1")).text)
        assert shown.one(f'li[data-alert-id="{alert_id}"]').get("data-status") == "acknowledged"


async def test_a_rules_alerts_are_one_line_with_their_number_and_acknowledged_together(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Jeanne R.")
    stranger, _ = await make_patient(db, other)
    daily = [
        await add_alert(db, patient, rule="postprandial_above_target", severity="info", opened_ago=dt.timedelta(days=d),
                        message_en=f"After-meal above target, day {d}.")
        for d in (3, 2, 1)
    ]  # fmt: skip
    await add_alert(db, patient, rule="no_data", severity="warning")  # what puts her on the list
    theirs = await add_alert(db, stranger)
    async with browser(services) as http:
        await login(http, email)
        home = await http.get("/")
        item = parse_html(home.text).one(f'tr[data-patient-id="{patient}"] li.alert-item[data-rule="above_target"]')
        assert item.get("data-count") == "3" and item.one("span.times").text() == "×3"
        assert item.one("span.message").text() == "After-meal above target, day 1."  # the latest explains
        ids = (item.one("button").get("value") or "").split()
        assert sorted(ids) == sorted(str(i) for i in daily)
        assert item.one("button").text() == "Acknowledge (3)"
        # another team's alert slipped into the form is left alone
        data = [("csrf_token", csrf_of(home.text)), ("next", "/")] + [("alert_id", i) for i in [*ids, str(theirs)]]
        done = await http.post(
            "/alerts/acknowledge",
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 303
        only_theirs = urlencode([("csrf_token", csrf_of(home.text)), ("alert_id", str(theirs))])
        refused = await http.post(
            "/alerts/acknowledge", content=only_theirs, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert refused.status_code == 404
    statuses = await db.fetch("SELECT id, status FROM alerts WHERE id = ANY($1::bigint[])", [*daily, theirs])
    assert {r["id"]: r["status"] for r in statuses} == {**dict.fromkeys(daily, "acknowledged"), theirs: "open"}


async def test_another_teams_patient_is_never_shown_nor_acted_on(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    stranger, device = await make_patient(db, other, "Not yours")
    await add_readings(db, stranger, device, [(NOW - dt.timedelta(hours=2), 60.0, "fasting", None)])
    alert_id = await add_alert(db, stranger)
    async with browser(services) as http:
        await login(http, email)
        home = await http.get("/")
        token = csrf_of(home.text)
        assert "Not yours" not in home.text
        assert (await http.get(f"/patients/{stranger}")).status_code == 404
        for action in ("acknowledge", "snooze", "resolve"):
            answer = await http.post(f"/alerts/{alert_id}/{action}", data={"csrf_token": token, "for": "1h"})
            assert answer.status_code == 404
        for path, data in (
            ("review", {}),
            ("notes", {"body": "hello"}),
            ("settings", {"profile": "ADA", "treatment": "insulin", "readings_per_day": "6"}),
            ("delivery", {"delivery_date": dt.date.today().isoformat()}),
        ):
            answer = await http.post(f"/patients/{stranger}/{path}", data={"csrf_token": token, **data})
            assert answer.status_code == 404, path
    row = await db.fetchrow("SELECT status, snoozed_until FROM alerts WHERE id = $1", alert_id)
    assert row["status"] == "open" and row["snoozed_until"] is None
    p = await db.fetchrow("SELECT profile, delivery_date, last_reviewed_at FROM patients WHERE id = $1", stranger)
    assert (p["profile"], p["delivery_date"], p["last_reviewed_at"]) == ("FR", None, None)
    assert not await db.fetchval("SELECT count(*) FROM patient_notes WHERE patient_id = $1", stranger)


async def test_forms_without_the_sessions_csrf_token_are_refused(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    alert_id = await add_alert(db, patient)
    async with browser(services) as http, browser(services) as other:
        await login(http, email)
        await login(other, await make_clinician(db, team))
        someone_elses = csrf_of((await other.get("/")).text)
        for token in (None, "", "forged", someone_elses):
            data = {} if token is None else {"csrf_token": token}
            answer = await http.post(f"/alerts/{alert_id}/acknowledge", data=data)
            assert answer.status_code == 403
            assert "expired" in parse_html(answer.text).one("p.error").text()
            assert (await http.post(f"/patients/{patient}/notes", data=data | {"body": "x"})).status_code == 403
            assert (await http.post("/preferences", data=data | {"unit": "g/L"})).status_code == 403
            assert (await http.post("/logout", data=data)).status_code == 403
        # a right token from another site is refused too
        mine = csrf_of((await http.get("/")).text)
        cross = await http.post(
            f"/alerts/{alert_id}/acknowledge", data={"csrf_token": mine}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        # and the login form has its own token
        refused = await http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": "nope"})
        assert refused.status_code == 403
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"
    assert not await db.fetchval("SELECT count(*) FROM patient_notes WHERE patient_id = $1", patient)


async def test_repeated_failures_lock_the_account_for_a_growing_delay(services: Services, db: asyncpg.Pool) -> None:
    email = await make_clinician(db, await make_team(db))
    async with browser(services) as http:
        for _ in range(4):
            assert (await login(http, email, "wrong password")).status_code == 401
        fifth = await login(http, email, "wrong password")
        assert fifth.status_code == 401
        locked = await login(http, email)  # the right password, but locked
        assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 30
        assert "Réessayez dans" in parse_html(locked.text).one("p.error").text()  # no Accept-Language: French
        assert "telemon_session" not in locked.headers.get("set-cookie", "")
        # an unknown account is locked the same way (nothing tells accounts apart)
        ghost = f"ghost-{email}"
        for _ in range(5):
            assert (await login(http, ghost, "x")).status_code == 401
        assert (await login(http, ghost, "x")).status_code == 429
        # once the delay is over, the next failure locks for twice as long
        await db.execute(
            "UPDATE login_throttle SET locked_until = now() - interval '1 s' WHERE key = $1", account_key(email, HERE)
        )
        assert (await login(http, email, "wrong again")).status_code == 401
        again = await login(http, email)
        assert again.status_code == 429 and 30 < int(again.headers["retry-after"]) <= 60
        await db.execute("UPDATE login_throttle SET locked_until = NULL WHERE key = $1", account_key(email, HERE))
        assert (await login(http, email)).status_code == 303
        assert not await db.fetchval("SELECT count(*) FROM login_throttle WHERE key = $1", account_key(email, HERE))
    failed = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'login.failed' AND detail->>'email' = $1", email
    )
    assert failed == 6


async def test_units_and_language_follow_the_clinician(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient, device = await make_patient(db, team, "Inès B.")
    morning = (NOW - dt.timedelta(days=1)).replace(hour=6, minute=30)
    await add_readings(
        db,
        patient,
        device,
        [(morning, 95.0, "fasting", None), (morning + dt.timedelta(hours=3), 135.0, "after_meal", "breakfast")],
    )
    await add_alert(db, patient)
    expectations = {  # (the page tests read text with its spaces normalised)
        ("mg/dL", "en"): ("95", "below 54 mg/dL", "Fasting"),
        ("mmol/L", "en"): ("5.3", "below 3.0 mmol/L", "Fasting"),
        ("g/L", "fr"): ("0,95", "sous 0,54 g/L", "À jeun"),
        ("mmol/L", "fr"): ("5,3", "sous 3,0 mmol/L", "À jeun"),
    }
    for (unit, language), (fasting, message, heading) in expectations.items():
        email = await make_clinician(db, team, unit=unit, language=language)
        async with browser(services) as http:
            await login(http, email)
            page = parse_html((await http.get(f"/patients/{patient}")).text)
            assert page.one("html").get("lang") == language
            assert page.one('table.logbook th[data-slot="fasting"]').text() == heading
            cells = page.select('td.cell[data-slot="fasting"] span.reading')
            assert [c.one("span.v").text() for c in cells] == [fasting]
            assert page.one("h2#logbook-title span.unit-note").text() == f"({unit})"
            assert message in page.one("#alerts p.message").text()
            triage = parse_html((await http.get("/")).text)
            assert message in triage.one("li.alert-item span.message").text()


async def test_switching_the_unit_from_any_page(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, device = await make_patient(db, team)
    await add_readings(db, patient, device, [(NOW - dt.timedelta(hours=30), 110.0, "fasting", None)])
    async with browser(services) as http:
        await login(http, email)
        page = (await http.get(f"/patients/{patient}")).text
        quick = parse_html(page).one("form.quick")
        assert quick.one("label[for=quick-unit]") and quick.one("select#quick-unit")
        answer = await http.post(
            "/preferences",
            data={"csrf_token": csrf_of(page), "unit": "mmol/L", "language": "fr", "next": f"/patients/{patient}"},
        )
        assert answer.headers["location"] == f"/patients/{patient}"
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert after.one("p.flash").text() == "Préférences enregistrées."
        assert [s.text() for s in after.select('td.cell[data-slot="fasting"] span.v')] == ["6,1"]
    assert await db.fetchval("SELECT display_unit FROM clinicians WHERE email = $1", email) == "mmol/L"


async def test_every_control_has_a_label_and_no_signal_is_colour_alone(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, device = await make_patient(db, team)
    await add_readings(db, patient, device, [(NOW - dt.timedelta(hours=5), 60.0, "fasting", None)])
    await add_alert(db, patient)
    async with browser(services) as http:
        await login(http, email)
        for path in ("/", "/patients", f"/patients/{patient}", "/preferences"):
            page = parse_html((await http.get(path)).text)
            labels = {node.get("for") for node in page.select("label")}
            for node in page.iter():
                if node.tag in ("input", "select", "textarea") and node.get("type") != "hidden":
                    wrapped = any(a.tag == "label" for a in _ancestors(node))
                    assert node.get("id") in labels or node.get("aria-label") or wrapped, (path, node.attrs)
                if node.tag == "button":
                    assert node.text() or node.get("aria-label"), (path, node.attrs)
            for badge in page.select("span.badge"):  # severity: an icon and a word
                assert badge.one("span.icon").text() and len(badge.text()) > 2
            for reading in page.select("span.reading"):  # judgement: an icon (and words on the logbook)
                assert reading.one("span.icon").text()
            assert page.one("a.skip").get("href") == "#main" and page.one("main#main")


def _ancestors(node: Node) -> Iterator[Node]:
    while node.parent is not None:
        node = node.parent
        yield node
