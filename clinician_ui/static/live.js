// telemon dashboard: live updates through server-sent events, and the print button. Plain JavaScript, no
// library. The page works without it (every action is a form); with it, regions marked data-live-region are
// refetched from the server when an alert or a reading of a patient on the page changes.
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function setupPrint() {
    var buttons = document.querySelectorAll("[data-print]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function () { window.print(); });
    }
  }

  function setupLive() {
    var body = document.body;
    var url = body.getAttribute("data-live");
    if (!url || typeof window.EventSource !== "function") return;
    var page = body.getAttribute("data-page") || "";
    var patientId = body.getAttribute("data-patient-id");
    var status = document.getElementById("live-status");
    var renderedAt = Date.now();
    var everConnected = false;
    var timer = null;
    var inFlight = false;
    var again = false;
    var pendingMessage = null;

    function showStatus(online) {
      if (!status) return;
      status.hidden = false;
      status.textContent = status.getAttribute(online ? "data-online" : "data-offline");
      status.classList.toggle("offline", !online);
    }

    function concerns(data) {
      if (page === "patient") return data.patient_id === patientId;
      if (page === "triage" || page === "patients") return true;
      return false;
    }

    function onPage(data) {
      // a reading only matters to the triage page when its patient is listed there
      return document.querySelector('[data-patient-id="' + data.patient_id + '"]') !== null;
    }

    function refresh() {
      if (inFlight) { again = true; return; }
      inFlight = true;
      fetch(window.location.href, { headers: { "X-Telemon-Live": "1" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error("status " + response.status); }
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          var regions = document.querySelectorAll("[data-live-region]");
          var active = document.activeElement;
          var activeId = active && active.id;
          for (var i = 0; i < regions.length; i++) {
            var region = regions[i];
            if (!region.id) continue;
            var replacement = fresh.getElementById(region.id);
            if (!replacement) continue;
            if (active && region.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA" || active.tagName === "SELECT")) continue;
            region.innerHTML = replacement.innerHTML;
          }
          if (activeId) {
            var again_ = document.getElementById(activeId);
            if (again_ && again_ !== document.activeElement) again_.focus();
          }
          body.setAttribute("data-refreshed", String(Date.now()));
          announce(pendingMessage || body.getAttribute("data-live-updated"));
          pendingMessage = null;
        })
        .catch(function () { /* the next event or reconnection tries again */ })
        .then(function () {
          inFlight = false;
          if (again) { again = false; schedule(); }
        });
    }

    function schedule() {
      if (timer !== null) return;
      timer = window.setTimeout(function () { timer = null; refresh(); }, 300);
    }

    var source = new EventSource(url);
    source.addEventListener("hello", function () {
      showStatus(true);
      // after a reconnection (or a slow first connection) something may have been missed
      if (everConnected || Date.now() - renderedAt > 3000) schedule();
      everConnected = true;
    });
    source.addEventListener("alert", function (event) {
      var data = JSON.parse(event.data);
      if (!concerns(data)) return;
      if (data.change === "opened") pendingMessage = body.getAttribute("data-live-new-alert");
      schedule();
    });
    source.addEventListener("reading", function (event) {
      var data = JSON.parse(event.data);
      if (!concerns(data)) return;
      if (page !== "patient" && !onPage(data)) return;
      schedule();
    });
    source.addEventListener("message", function (event) {
      // a message sent or read: the patient's page shows the conversation, the triage lists unread messages
      var data = JSON.parse(event.data);
      if (!concerns(data)) return;
      if (page !== "patient" && data.author !== "patient" && !onPage(data)) return;
      if (data.author === "patient") pendingMessage = body.getAttribute("data-live-new-message");
      schedule();
    });
    source.addEventListener("resync", function () { schedule(); });
    source.addEventListener("error", function () { showStatus(false); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupPrint();
    setupLive();
  });
})();
