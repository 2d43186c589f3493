// Live progress: any element with data-poll gets its operations' counts refreshed from the
// console's JSON endpoint every second, until every operation shown is final.
"use strict";
(function () {
  var FINAL = ["COMPLETED", "CANCELED"];
  var FIELDS = ["scheduled", "queued", "sent", "delivered", "read", "undelivered", "failed", "canceled", "unaddressable"];

  function update(op) {
    var status = document.querySelector('[data-op-status="' + op.id + '"]');
    if (status) {
      status.textContent = op.status;
      status.className = "status " + op.status.toLowerCase();
    }
    var box = document.querySelector('.progress[data-op="' + op.id + '"]');
    if (!box) return;
    var s = op.stats;
    FIELDS.forEach(function (name) {
      var cell = box.querySelector('[data-field="' + name + '"]');
      if (cell) cell.textContent = String(s[name]);
    });
    var bar = box.querySelector("progress");
    if (bar) {
      bar.max = s.total;
      bar.value = s.delivered + s.read + s.undelivered + s.failed + s.canceled + s.unaddressable;
    }
  }

  function poll(element) {
    var url = element.getAttribute("data-poll");
    var timer = window.setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) { window.clearInterval(timer); return; }
          body.operations.forEach(update);
          var live = body.operations.some(function (op) { return FINAL.indexOf(op.status) < 0; });
          if (!live) {
            window.clearInterval(timer);
            element.setAttribute("data-settled", "true");
          }
        })
        .catch(function () { /* a missed tick; the next one retries */ });
    }, 1000);
  }

  // A phone thread reloads when a message arrives, unless a reply is being typed.
  function watchThread(element) {
    var url = element.getAttribute("data-thread");
    var shown = element.getAttribute("data-count");
    var timer = window.setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) { window.clearInterval(timer); return; }
          var draft = element.querySelector("textarea");
          if (String(body.count) !== shown && !(draft && draft.value)) {
            window.location.reload();
          }
        })
        .catch(function () { /* a missed tick; the next one retries */ });
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-thread]").forEach(watchThread);
  });
})();
