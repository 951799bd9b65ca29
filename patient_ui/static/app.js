"use strict";
/* The companion app: pairing, recording (into the offline queue, then sent in order), the logbook and targets,
   and the messages with the care team. Everything goes through the public API with the app's device token. */
(() => {
  const TEXTS = JSON.parse(document.getElementById("texts").textContent);
  const TO_MGDL = { "mg/dL": 1, "mmol/L": 18.01559, "g/L": 100 }; // the server's factors (telemon.units)
  const DIGITS = { "mg/dL": 0, "mmol/L": 1, "g/L": 2 };
  const SLOTS = ["fasting", "breakfast", "lunch", "dinner", "other"];
  const ICONS = { in: "✓", above: "▲", hypo: "▼", control: "○", none: "·" };
  const WORST = { control: 0, none: 1, in: 2, above: 3, hypo: 4 };
  const BATCH = 100;
  const KEY = {
    token: "telemon.token", me: "telemon.me", unit: "telemon.unit", lang: "telemon.lang",
    readings: "telemon.readings", receipt: "telemon.receipt", seen: "telemon.messages.seen",
    measures: "telemon.measures",
  };
  const DOSE_SLOTS = ["breakfast", "lunch", "dinner", "bedtime"];
  const DOSE_COLUMN = { breakfast: "breakfast", lunch: "lunch", dinner: "dinner", bedtime: "other" };
  const $ = (id) => document.getElementById(id);

  const state = {
    token: localStorage.getItem(KEY.token),
    me: JSON.parse(localStorage.getItem(KEY.me) || "null"),
    readings: JSON.parse(localStorage.getItem(KEY.readings) || "[]"),
    measures: JSON.parse(localStorage.getItem(KEY.measures) || "[]"),
    pending: [],
    flushing: false,
    asked: { readings: 0, measures: 0 }, // the latest load of each list: an older answer arriving later is dropped
    whenDefault: "",
  };

  function lang() { return localStorage.getItem(KEY.lang) || (state.me && state.me.language) || document.documentElement.lang; }
  function unit() { return localStorage.getItem(KEY.unit) || (state.me && state.me.unit) || "mg/dL"; }
  function t(key, params) {
    let text = (TEXTS[lang()] || TEXTS.fr)[key] || key;
    for (const [name, value] of Object.entries(params || {})) text = text.replace(`{${name}}`, value);
    return text;
  }

  // --- numbers in her unit -------------------------------------------------------------------------------------
  function fromMgdl(mgdl) { return mgdl / TO_MGDL[unit()]; }
  function number(mgdl) {
    const text = fromMgdl(mgdl).toFixed(DIGITS[unit()]);
    return lang() === "fr" ? text.replace(".", ",") : text;
  }
  function glucose(mgdl) { return `${number(mgdl)} ${unit()}`; }
  function decimal(value) { return lang() === "fr" ? String(value).replace(".", ",") : String(value); }
  function parseValue(text) {
    const value = Number(String(text).trim().replace(",", "."));
    return text.trim() !== "" && Number.isFinite(value) && value > 0 ? value : null;
  }

  // --- judging as the server does: in target iff value < target; LO or below the hypo floor is a hypo --------
  function judge(mgdl, context, meal, minutes, flags) {
    const me = state.me;
    if (!me) return { status: "none", target: null };
    if (flags.includes("control_solution")) return { status: "control", target: null };
    const targets = me.targets_mgdl;
    let target = null;
    if (context === "fasting") target = targets.fasting;
    else if (context === "after_meal" && meal !== "snack") {
      const oneHour = targets.one_hour !== null && (minutes === null
        ? me.after_meal_usual === "one_hour" : minutes <= me.one_hour_until_minutes);
      target = oneHour ? targets.one_hour : targets.two_hours;
    }
    if (flags.includes("lo") || (mgdl !== null && mgdl < me.hypo_below_mgdl)) return { status: "hypo", target };
    if (flags.includes("hi")) return { status: "above", target };
    if (target === null) return { status: "none", target: null };
    return { status: mgdl >= target ? "above" : "in", target };
  }

  function slotOf(context, meal) {
    if (context === "fasting") return "fasting";
    if (context === "after_meal" && ["breakfast", "lunch", "dinner"].includes(meal)) return meal;
    return "other";
  }

  // --- talking to the server -----------------------------------------------------------------------------------
  class SignedOut extends Error {}

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (options.body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if ((response.status === 401 || response.status === 403) && state.token && !path.endsWith("/pairing")) {
      signOut(true);
      throw new SignedOut();
    }
    return response;
  }

  function signOut(byTeam) {
    state.token = null;
    state.me = null;
    for (const key of [KEY.token, KEY.me, KEY.readings, KEY.receipt, KEY.seen, KEY.measures]) localStorage.removeItem(key);
    ReadingQueue.clear().catch(() => {});
    $("signed-out").hidden = !byTeam;
    show();
  }

  async function pair(code) {
    $("pair-error").hidden = true;
    let response;
    try {
      response = await api("/api/v1/pairing", { method: "POST", body: JSON.stringify({ code }) });
    } catch (error) {
      return pairError(t("pair.offline"));
    }
    if (response.status === 429) return pairError(t("pair.wait"));
    if (!response.ok) return pairError(t("pair.wrong"));
    const credentials = await response.json();
    state.token = credentials.token;
    localStorage.setItem(KEY.token, state.token);
    $("signed-out").hidden = true;
    await loadMe();
    location.hash = "#record";
    show();
    loadReadings();
    loadMeasures();
    loadMessages();
    listen();
  }

  function pairError(text) {
    $("pair-error").textContent = text;
    $("pair-error").hidden = false;
  }

  async function loadMe() {
    try {
      const response = await api("/api/v1/me");
      if (!response.ok) return;
      const before = JSON.stringify(state.me && state.me.plan);
      state.me = await response.json();
      localStorage.setItem(KEY.me, JSON.stringify(state.me));
      if (!localStorage.getItem(KEY.lang)) localStorage.setItem(KEY.lang, state.me.language);
      translate();
      if (JSON.stringify(state.me.plan) !== before) fillDoseChoices(); // a new plan: its doses pre-filled
    } catch (error) { /* offline: the profile last loaded stays */ }
  }

  function isoDay(date, timeZone) {
    return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
  }

  async function loadReadings() {
    if (!state.token || !state.me) return;
    const ticket = ++state.asked.readings;
    const first = new Date(Date.now() - 13 * 86400000);
    const items = [];
    let cursor = null;
    try {
      do {
        const query = new URLSearchParams({ from: isoDay(first, state.me.time_zone), kind: "smbg", limit: "1000" });
        if (cursor) query.set("cursor", cursor);
        const response = await api(`/api/v1/me/readings?${query}`);
        if (!response.ok) throw new Error(String(response.status));
        const page = await response.json();
        items.push(...page.items);
        cursor = page.next;
      } while (cursor);
      if (ticket !== state.asked.readings) return;
      state.readings = items;
      localStorage.setItem(KEY.readings, JSON.stringify(items));
      $("stale").hidden = true;
    } catch (error) {
      if (error instanceof SignedOut) return;
      $("stale").hidden = false;
    }
    renderLogbook();
  }

  /* Her doses, ketones, weights and blood pressures of the last 14 days, kept for offline as the readings are. */
  async function loadMeasures() {
    if (!state.token || !state.me) return;
    const ticket = ++state.asked.measures;
    const first = new Date(Date.now() - 13 * 86400000);
    const items = [];
    let cursor = null;
    try {
      do {
        const query = new URLSearchParams({ from: isoDay(first, state.me.time_zone), limit: "1000" });
        if (cursor) query.set("cursor", cursor);
        const response = await api(`/api/v1/me/measurements?${query}`);
        if (!response.ok) throw new Error(String(response.status));
        const page = await response.json();
        items.push(...page.items);
        cursor = page.next;
      } while (cursor);
      if (ticket !== state.asked.measures) return;
      state.measures = items;
      localStorage.setItem(KEY.measures, JSON.stringify(items));
    } catch (error) { /* offline: as last loaded (the logbook says so) */ }
    renderLogbook();
  }

  // --- recording and sending -----------------------------------------------------------------------------------
  function newId() {
    if (crypto.randomUUID) return `app-${crypto.randomUUID()}`;
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return `app-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  function localInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function resetForm() {
    state.whenDefault = localInput(new Date());
    $("when").value = state.whenDefault;
    for (const input of document.querySelectorAll("input.when")) setNow(input);
    $("value").value = "";
    $("note").value = "";
    $("minutes").value = "";
    document.querySelector("input[name=lohi][value='']").checked = true;
  }

  async function record(event) {
    event.preventDefault();
    const lohi = document.querySelector("input[name=lohi]:checked").value;
    const typed = parseValue($("value").value);
    $("record-error").hidden = true;
    if (typed === null && !lohi) {
      $("record-error").textContent = t("record.invalid");
      $("record-error").hidden = false;
      $("value").focus();
      return;
    }
    // untouched, the time is this very second (two readings of one minute stay two readings)
    const when = $("when").value === state.whenDefault ? new Date() : new Date($("when").value);
    const context = $("context").value;
    const afterMeal = context === "after_meal";
    const minutes = afterMeal && $("minutes").value !== "" ? Number($("minutes").value) : null;
    const flags = ["manual", ...(lohi ? [lohi] : [])];
    const reading = { id: newId(), measured_at: when.toISOString(), kind: "smbg", context, unit: unit(), flags };
    if (typed !== null) reading.value = typed;
    if (afterMeal) reading.meal = $("meal").value;
    if (minutes !== null) reading.minutes_after_meal = minutes;
    if ($("note").value.trim()) reading.note = $("note").value.trim();
    await ReadingQueue.add({ reading, recorded_at: new Date().toISOString() });
    const mgdl = typed === null ? null : typed * TO_MGDL[unit()];
    const judgement = judge(mgdl, context, reading.meal || null, minutes, flags);
    const shown = lohi ? lohi.toUpperCase() : glucose(mgdl);
    const line = $("judgement");
    line.className = `judgement reading reading-${judgement.status}`;
    line.textContent = `${ICONS[judgement.status]} ${t("record.saved", { value: shown, judgement: t(`judge.${judgement.status}`) })}` +
      (judgement.target ? ` (${t("target.below", { value: glucose(judgement.target) })})` : "") +
      (navigator.onLine ? "" : ` — ${t("record.queued")}`);
    line.hidden = false;
    resetForm();
    await refreshQueue();
    flush();
  }

  /* The other kinds of the device contract: an insulin dose (pre-filled from her plan in force), a ketone result,
     her weight, her blood pressure. Each goes into the same queue as the readings, with an id made here. */
  function slotNow(date) {
    const hour = date.getHours() + date.getMinutes() / 60;
    if (hour >= 4 && hour < 10.5) return "breakfast";
    if (hour >= 10.5 && hour < 15.5) return "lunch";
    if (hour >= 15.5 && hour < 20.5) return "dinner";
    return "bedtime";
  }

  function planDoses() { return (state.me && state.me.plan && state.me.plan.doses) || []; }

  function fillDoseChoices() {
    const select = $("dose-choice");
    const kept = select.value;
    select.replaceChildren();
    planDoses().forEach((dose, index) => {
      const option = document.createElement("option");
      option.value = String(index);
      option.textContent = t("dose.prescribed", { slot: t(`dose.slot.${dose.slot}`), product: dose.product || t(`insulin.${dose.insulin}`), units: decimal(dose.units) });
      select.append(option);
    });
    const other = document.createElement("option");
    other.value = "other";
    other.textContent = t("dose.other");
    select.append(other);
    const now = slotNow(new Date());
    const due = planDoses().findIndex((dose) => dose.slot === now);
    select.value = kept && [...select.options].some((o) => o.value === kept) ? kept : (due >= 0 ? String(due) : (planDoses().length ? "0" : "other"));
    applyDoseChoice();
  }

  function applyDoseChoice() {
    const dose = planDoses()[Number($("dose-choice").value)];
    $("dose-plan").textContent = dose ? t("dose.as_prescribed", { units: decimal(dose.units) }) : t(planDoses().length ? "dose.units" : "dose.no_plan");
    $("dose-plan").hidden = !dose && planDoses().length > 0;
    if (dose) {
      $("dose-units").value = decimal(dose.units);
      $("dose-slot").value = dose.slot;
      $("dose-insulin").value = dose.insulin;
      $("dose-product").value = dose.product || "";
    } else {
      $("dose-units").value = "";
      $("dose-slot").value = slotNow(new Date());
      $("dose-product").value = "";
    }
  }

  function setNow(input) {
    input.value = localInput(new Date());
    input.dataset.default = input.value;
  }

  // untouched, the time is this very second (two entries of one minute stay two entries)
  function instantOf(input) { return input.value === input.dataset.default ? new Date() : new Date(input.value); }

  function describe(item) {
    if (item.kind === "insulin") {
      return t("m.insulin", { product: item.product || t(`insulin.${item.insulin}`), units: decimal(item.units), slot: t(`dose.slot.${item.slot}`) });
    }
    if (item.kind === "ketone") {
      return item.urine ? t("m.ketone.urine", { grade: t(`urine.${item.urine}`) }) : t("m.ketone.blood", { value: decimal(item.value) });
    }
    if (item.kind === "weight") return t("m.weight", { value: decimal(item.value), unit: item.unit });
    return t("m.blood_pressure", { systolic: item.systolic, diastolic: item.diastolic }) +
      (item.pulse ? t("m.pulse", { pulse: item.pulse }) : "");
  }

  function fail(form, key, field) {
    $(`${form}-error`).textContent = t(key);
    $(`${form}-error`).hidden = false;
    $(field).focus();
  }

  function integer(text) {
    const value = parseValue(text);
    return value !== null && Number.isInteger(value) ? value : null;
  }

  /* The item of the form ``name``, or null after saying what is wrong. */
  function measureOf(name) {
    $(`${name}-error`).hidden = true;
    const item = { id: newId(), measured_at: instantOf($(`${name}-when`)).toISOString() };
    if (name === "dose") {
      const units = parseValue($("dose-units").value);
      if (units === null || units > 160) return fail("dose", "dose.invalid", "dose-units");
      Object.assign(item, { kind: "insulin", units, insulin: $("dose-insulin").value, slot: $("dose-slot").value });
      if ($("dose-product").value.trim()) item.product = $("dose-product").value.trim();
    } else if (name === "ketone") {
      item.kind = "ketone";
      if (document.querySelector("input[name=ketone-how]:checked").value === "urine") item.urine = $("ketone-urine").value;
      else {
        const value = parseValue($("ketone-value").value) ?? (/^\s*0+([.,]0*)?\s*$/.test($("ketone-value").value) ? 0 : null);
        if (value === null || value > 8) return fail("ketone", "ketone.invalid", "ketone-value");
        Object.assign(item, { value, unit: "mmol/L" });
      }
    } else if (name === "weight") {
      const value = parseValue($("weight-value").value);
      if (value === null) return fail("weight", "weight.invalid", "weight-value");
      Object.assign(item, { kind: "weight", value, unit: $("weight-unit").value });
    } else {
      const systolic = integer($("bp-systolic").value);
      const diastolic = integer($("bp-diastolic").value);
      if (systolic === null || diastolic === null || diastolic >= systolic) return fail("bp", "bp.invalid", "bp-systolic");
      Object.assign(item, { kind: "blood_pressure", systolic, diastolic, unit: "mmHg" });
      const pulse = integer($("bp-pulse").value);
      if (pulse !== null) item.pulse = pulse;
    }
    return item;
  }

  async function recordMeasure(event) {
    event.preventDefault();
    const name = event.target.id.replace("-form", "");
    const item = measureOf(name);
    if (!item) return;
    await ReadingQueue.add({ reading: item, recorded_at: new Date().toISOString() });
    const line = $("measure-saved");
    line.textContent = `✓ ${t("measure.saved", { what: describe(item) })}` + (navigator.onLine ? "" : ` — ${t("record.queued")}`);
    line.hidden = false;
    for (const input of event.target.querySelectorAll("input[type=text]")) input.value = "";
    setNow($(`${name}-when`));
    if (name === "dose") applyDoseChoice();
    await refreshQueue();
    flush();
  }

  function chooseKind() {
    const kind = document.querySelector("input[name=record-kind]:checked").value;
    for (const form of document.querySelectorAll("form.record-kind")) form.hidden = form.dataset.kind !== kind;
    $("judgement").hidden = true;
    $("measure-saved").hidden = true;
    if (kind === "insulin") fillDoseChoices();
  }

  async function refreshQueue() {
    state.pending = await ReadingQueue.all();
    $("queue-count").textContent = state.pending.length ? t("queue.count", { n: state.pending.length }) : "";
    renderLogbook();
  }

  /* Sends the queue in the order it was recorded, a batch at a time; a reading leaves the queue once the receipt
     counts it (stored, a duplicate of one stored before, or refused with its reason). A failed request leaves it
     there for the next try: the ids made here make a retry a duplicate, never a double. */
  async function flush() {
    if (state.flushing || !state.token) return;
    state.flushing = true;
    let sent = false;
    try {
      for (;;) {
        const entries = (await ReadingQueue.all()).slice(0, BATCH);
        if (!entries.length) break;
        const response = await api("/api/v1/readings", {
          method: "POST", body: JSON.stringify({ readings: entries.map((entry) => entry.reading) }),
        });
        if (!response.ok) break;
        const receipt = await response.json();
        await ReadingQueue.remove(entries.map((entry) => entry.seq));
        sent = true;
        const rejected = (receipt.rejected || []).map((r) => `${entries[r.index].reading.measured_at}: ${r.reason}`);
        const text = t("receipt.text", { accepted: receipt.accepted, duplicates: receipt.duplicates, rejected: rejected.length }) +
          (rejected.length ? ` — ${rejected.join("; ")}` : "");
        localStorage.setItem(KEY.receipt, text);
        $("receipt").textContent = text;
      }
    } catch (error) { /* offline or the server is away: the queue stays for the next try */ }
    state.flushing = false;
    await refreshQueue();
    if (sent) { loadReadings(); loadMeasures(); }
  }

  // --- what she sees -------------------------------------------------------------------------------------------
  function renderTargets() {
    const me = state.me;
    const list = $("targets");
    list.replaceChildren();
    if (!me) return;
    const rows = [["see.fasting", me.targets_mgdl.fasting], ["see.one_hour", me.targets_mgdl.one_hour],
      ["see.two_hours", me.targets_mgdl.two_hours]];
    for (const [key, value] of rows) {
      if (value === null) continue;
      const term = document.createElement("dt");
      term.textContent = t(key);
      const detail = document.createElement("dd");
      detail.textContent = `< ${glucose(value)}`;
      list.append(term, detail);
    }
    const term = document.createElement("dt");
    term.textContent = t("see.hypo");
    const detail = document.createElement("dd");
    detail.textContent = glucose(me.hypo_below_mgdl);
    list.append(term, detail);
  }

  function entryElement(entry) {
    const span = document.createElement("span");
    span.className = `reading reading-${entry.status}${entry.pending ? " pending" : ""}`;
    span.dataset.mgdl = entry.mgdl === null ? "" : String(entry.mgdl);
    span.dataset.status = entry.status;
    const icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[entry.status];
    const value = document.createElement("span");
    value.className = "v";
    value.textContent = entry.flags.includes("lo") ? "LO" : entry.flags.includes("hi") ? "HI" : number(entry.mgdl);
    const at = document.createElement("time");
    at.className = "at";
    at.textContent = entry.time;
    const words = document.createElement("span");
    words.className = "visually-hidden";
    words.textContent = `, ${entry.time}, ${t(`judge.${entry.status}`)}${entry.pending ? `, ${t("see.pending")}` : ""}`;
    span.append(icon, value, at, words);
    span.title = `${entry.time} — ${t(`judge.${entry.status}`)}`;
    return span;
  }

  function renderLogbook() {
    const table = $("logbook");
    table.replaceChildren();
    if (!state.me) return;
    const zone = state.me.time_zone;
    const today = new Date();
    const days = Array.from({ length: 14 }, (_, i) => isoDay(new Date(today.getTime() - i * 86400000), zone));
    const grid = Object.fromEntries(days.map((day) => [day, Object.fromEntries(SLOTS.map((s) => [s, []]))]));
    const doses = {}; // her insulin doses beside her readings: a meal's dose in its meal's column, bedtime in "other"
    for (const m of measuresShown(zone)) {
      if (m.kind !== "insulin" || !m.slot) continue;
      const column = DOSE_COLUMN[m.slot];
      ((doses[m.day] ||= {})[column] ||= []).push(m);
    }
    for (const r of state.readings) {
      const day = r.local_time.slice(0, 10);
      if (!grid[day]) continue;
      grid[day][r.slot].push({ mgdl: r.value_mgdl, status: r.status, flags: r.flags, time: r.local_time.slice(11, 16), sort: r.measured_at });
    }
    for (const entry of state.pending) {
      const r = entry.reading;
      if (r.kind !== "smbg") continue;
      const at = new Date(r.measured_at);
      const day = isoDay(at, zone);
      if (!grid[day]) continue;
      const mgdl = r.value === undefined ? null : r.value * TO_MGDL[r.unit];
      const judged = judge(mgdl, r.context, r.meal || null, r.minutes_after_meal ?? null, r.flags);
      const time = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit" }).format(at);
      grid[day][slotOf(r.context, r.meal)].push({ mgdl, status: judged.status, flags: r.flags, time, sort: r.measured_at, pending: true });
    }
    const head = table.createTHead().insertRow();
    const corner = document.createElement("th");
    corner.scope = "col";
    corner.textContent = t("see.day");
    head.append(corner);
    for (const slot of SLOTS) { // a short name on screen, the whole one read aloud
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.slot = slot;
      const shown = document.createElement("span");
      shown.setAttribute("aria-hidden", "true");
      shown.textContent = t(`slot.abbr.${slot}`);
      const read = document.createElement("span");
      read.className = "visually-hidden";
      read.textContent = t(`slot.${slot}`);
      th.append(shown, read);
      head.append(th);
    }
    const body = table.createTBody();
    const dayFormat = new Intl.DateTimeFormat(lang() === "fr" ? "fr-FR" : "en-GB", { weekday: "short", day: "numeric", timeZone: "UTC" });
    for (const day of days) {
      const row = body.insertRow();
      row.dataset.day = day;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = dayFormat.format(new Date(`${day}T12:00:00Z`));
      row.append(th);
      for (const slot of SLOTS) {
        const entries = grid[day][slot].sort((a, b) => a.sort.localeCompare(b.sort));
        const cell = row.insertCell();
        cell.dataset.slot = slot;
        const worst = entries.reduce((w, e) => (WORST[e.status] > WORST[w] ? e.status : w), "none");
        cell.className = `cell cell-${entries.length ? worst : "empty"}`;
        entries.forEach((entry) => cell.append(entryElement(entry)));
        for (const dose of (doses[day] || {})[slot] || []) cell.append(doseElement(dose));
      }
    }
    renderMeasures(days, zone);
  }

  /* Her measurements of the days shown, stored and still waiting, each with its local day and time. */
  function measuresShown(zone) {
    const clock = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit" });
    const found = state.measures.map((m) => ({
      ...m, unit: m.unit_sent || (m.kind === "ketone" && m.value !== null ? "mmol/L" : m.kind === "weight" ? "kg" : null),
      value: m.kind === "insulin" ? m.value : (m.value_sent ?? m.value), units: m.value,
      day: m.local_time.slice(0, 10), time: m.local_time.slice(11, 16), pending: false,
    }));
    for (const entry of state.pending) {
      const r = entry.reading;
      if (r.kind === "smbg") continue;
      const at = new Date(r.measured_at);
      found.push({ ...r, day: isoDay(at, zone), time: clock.format(at), pending: true });
    }
    return found.sort((a, b) => a.measured_at.localeCompare(b.measured_at));
  }

  function doseElement(dose) {
    const span = document.createElement("span");
    span.className = `dose${dose.pending ? " pending" : ""}`;
    const shown = document.createElement("span");
    shown.setAttribute("aria-hidden", "true");
    shown.textContent = t("m.dose_short", { units: decimal(dose.units) });
    const words = document.createElement("span");
    words.className = "visually-hidden";
    words.textContent = `, ${dose.time}, ${describe(dose)}${dose.pending ? `, ${t("see.pending")}` : ""}`;
    span.append(shown, words);
    span.title = `${dose.time} — ${describe(dose)}`;
    return span;
  }

  function renderMeasures(days, zone) {
    const list = $("measures");
    list.replaceChildren();
    const shown = new Set(days);
    const dayFormat = new Intl.DateTimeFormat(lang() === "fr" ? "fr-FR" : "en-GB", { weekday: "short", day: "numeric", timeZone: "UTC" });
    const items = measuresShown(zone).filter((m) => shown.has(m.day)).reverse();
    for (const m of items) {
      const item = document.createElement("li");
      item.className = `measure measure-${m.kind}${m.pending ? " pending" : ""}`;
      item.dataset.kind = m.kind;
      const when = document.createElement("span");
      when.className = "at";
      when.textContent = `${dayFormat.format(new Date(`${m.day}T12:00:00Z`))} ${m.time}`;
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = describe(m);
      item.append(when, " ", what);
      if (m.pending) {
        const note = document.createElement("em");
        note.textContent = ` — ${t("see.pending")}`;
        item.append(note);
      }
      list.append(item);
    }
    if (!items.length) {
      const empty = document.createElement("li");
      empty.textContent = t("see.no_measures");
      list.append(empty);
    }
  }

  // --- messages ------------------------------------------------------------------------------------------------
  /* The server lists the conversation newest first and marks the team's messages read as it hands them over
     (``read_at`` is as it was before), so the app keeps the ids of those that came unread until she has had
     them on screen: they stay marked "new" until she leaves the messages screen. */
  function newIds() { return new Set(JSON.parse(localStorage.getItem(KEY.seen) || "[]")); }

  /* The team's messages pushed: /api/v1/me/events is a server-sent-event stream read with fetch (the token goes in
     the Authorization header, which EventSource cannot send). Each "message" or "resync" event loads the
     conversation at once; when the stream ends or the network drops, it is opened again after a pause that grows
     up to a minute, and the slow poll below covers the gaps. */
  async function listen() {
    let pause = 1000;
    while (state.token) {
      if (navigator.onLine !== false) {
        try {
          const response = await api("/api/v1/me/events", { headers: { Accept: "text/event-stream" } });
          if (response.ok && response.body) {
            pause = 1000;
            const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
            let buffer = "";
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer += value;
              let end;
              while ((end = buffer.indexOf("\n\n")) >= 0) {
                const frame = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                if (/^event: (message|resync)$/m.test(frame)) loadMessages();
              }
            }
          }
        } catch (error) {
          if (error instanceof SignedOut) return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 60000);
    }
  }

  async function loadMessages() {
    if (!state.token) return;
    let items;
    try {
      const response = await api("/api/v1/me/messages?limit=200");
      if (!response.ok) throw new Error(String(response.status));
      items = (await response.json()).items;
      $("messages-error").hidden = true;
    } catch (error) {
      if (!(error instanceof SignedOut)) $("messages-error").hidden = false;
      return;
    }
    items.sort((a, b) => a.id - b.id); // newest last
    const marked = newIds();
    for (const message of items) if (message.author === "team" && !message.read_at) marked.add(message.id);
    localStorage.setItem(KEY.seen, JSON.stringify([...marked]));
    const list = $("conversation");
    list.replaceChildren();
    for (const message of items) {
      const team = message.author === "team";
      const isNew = marked.has(message.id);
      const item = document.createElement("li");
      item.className = `message ${team ? "from-team" : "from-me"}${isNew ? " new" : ""}`;
      const who = document.createElement("p");
      who.className = "who";
      const name = team ? (message.author_name || t("messages.team")) : t("messages.me");
      const when = new Date(message.created_at).toLocaleString(lang() === "fr" ? "fr-FR" : "en-GB", { dateStyle: "short", timeStyle: "short" });
      who.textContent = `${name} · ${when}`;
      if (isNew) {
        const mark = document.createElement("strong");
        mark.className = "badge";
        mark.textContent = t("messages.new");
        who.append(" ", mark);
      }
      const body = document.createElement("p");
      body.className = "body";
      body.textContent = message.body;
      item.append(who, body);
      list.append(item);
    }
    if (!items.length) {
      const empty = document.createElement("li");
      empty.textContent = t("messages.empty");
      list.append(empty);
    }
    $("unread").textContent = String(marked.size);
    $("unread").hidden = marked.size === 0;
  }

  async function sendMessage(event) {
    event.preventDefault();
    const body = $("message-body").value.trim();
    if (!body) return;
    try {
      const response = await api("/api/v1/me/messages", { method: "POST", body: JSON.stringify({ body }) });
      if (!response.ok) throw new Error(String(response.status));
      $("message-body").value = "";
    } catch (error) {
      if (!(error instanceof SignedOut)) $("messages-error").hidden = false;
    }
    loadMessages();
  }

  // --- screens, language, network ------------------------------------------------------------------------------
  function screen() {
    const name = location.hash.slice(1);
    return ["record", "see", "messages"].includes(name) ? name : "record";
  }

  function show() {
    const paired = Boolean(state.token);
    $("pair").hidden = paired;
    $("tabs").hidden = !paired;
    $("settings").hidden = !paired;
    const current = screen();
    for (const name of ["record", "see", "messages"]) $(name).hidden = !paired || name !== current;
    for (const link of document.querySelectorAll("#tabs a")) {
      if (link.dataset.screen === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (paired && current === "messages") loadMessages();
  }

  function translate() {
    document.documentElement.lang = lang();
    for (const element of document.querySelectorAll("[data-t]")) element.textContent = t(element.dataset.t);
    document.title = t("app.title");
    $("value-label").textContent = t("record.value", { unit: unit() });
    $("language").value = lang();
    $("unit").value = unit();
    $("receipt").textContent = localStorage.getItem(KEY.receipt) || "";
    network();
    renderTargets();
    renderLogbook();
    if (state.pending) $("queue-count").textContent = state.pending.length ? t("queue.count", { n: state.pending.length }) : "";
  }

  function network() {
    const online = navigator.onLine;
    $("network").textContent = online ? t("status.online") : t("status.offline");
    $("network").className = `network ${online ? "online" : "offline"}`;
  }

  async function changeLanguage() {
    const chosen = $("language").value;
    localStorage.setItem(KEY.lang, chosen);
    translate();
    try {
      const response = await api("/api/v1/me", { method: "PATCH", body: JSON.stringify({ language: chosen }) });
      if (response.ok) {
        state.me = await response.json();
        localStorage.setItem(KEY.me, JSON.stringify(state.me));
      }
    } catch (error) { /* offline: the app keeps her choice and the server learns it next time */ }
  }

  function start() {
    const fragment = location.hash.match(/^#pair=([A-Za-z0-9-]+)/);
    translate();
    resetForm();
    $("pair-form").addEventListener("submit", (event) => { event.preventDefault(); pair($("pair-code").value); });
    $("record-form").addEventListener("submit", record);
    for (const name of ["dose", "ketone", "weight", "bp"]) $(`${name}-form`).addEventListener("submit", recordMeasure);
    for (const radio of document.querySelectorAll("input[name=record-kind]")) radio.addEventListener("change", chooseKind);
    for (const radio of document.querySelectorAll("input[name=ketone-how]")) {
      radio.addEventListener("change", () => {
        const urine = document.querySelector("input[name=ketone-how]:checked").value === "urine";
        $("ketone-blood-fields").hidden = urine;
        $("ketone-urine-fields").hidden = !urine;
      });
    }
    $("dose-choice").addEventListener("change", applyDoseChoice);
    if (state.me && state.me.unit === "mg/dL" && state.me.profile === "ADA") $("weight-unit").value = "lb";
    fillDoseChoices();
    $("message-form").addEventListener("submit", sendMessage);
    $("context").addEventListener("change", () => { $("meal-fields").hidden = $("context").value !== "after_meal"; });
    $("language").addEventListener("change", changeLanguage);
    $("unit").addEventListener("change", () => { localStorage.setItem(KEY.unit, $("unit").value); translate(); });
    $("sign-out").addEventListener("click", () => signOut(false));
    let shown = screen();
    window.addEventListener("hashchange", () => {
      if (shown === "messages" && screen() !== "messages") {
        localStorage.removeItem(KEY.seen);
        $("unread").hidden = true;
      }
      shown = screen();
      show();
    });
    window.addEventListener("online", () => { network(); flush(); loadMe(); loadReadings(); loadMeasures(); });
    window.addEventListener("offline", network);
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(() => {});
    if (fragment) {
      history.replaceState(null, "", "/app#record");
      $("pair-code").value = fragment[1];
      if (!state.token) pair(fragment[1]);
    }
    show();
    refreshQueue().then(() => flush());
    if (state.token) { loadMe().then(() => { loadReadings(); loadMeasures(); }); }
    setInterval(flush, 10000);
    setInterval(loadMessages, 60000); // the events stream says at once; this covers a stream the network cut
    if (state.token) { loadMessages(); listen(); }
    document.body.dataset.ready = "1";
  }

  start();
})();
