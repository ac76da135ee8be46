// costplane dashboard: live refresh over server-sent events and TTL countdowns. No framework beyond htmx.
(function () {
  "use strict";
  function connect() {
    var url = document.body.getAttribute("data-live-events");
    if (!url || !window.EventSource) return;
    var status = document.getElementById("live-status");
    var source = new EventSource(url);
    source.onopen = function () { if (status) status.classList.add("on"); };
    source.onerror = function () { if (status) status.classList.remove("on"); };
    source.addEventListener("refresh", function () {
      // every live region re-fetches its own, role-scoped content
      document.body.dispatchEvent(new CustomEvent("costplane:refresh"));
    });
  }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.getAttribute("data-expires")) - now) / 1000);
      if (left <= 0) { el.textContent = "expired"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = h + ":" + pad(m) + ":" + pad(s);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    connect();
    countdowns();
    setInterval(countdowns, 1000);
  });
  document.addEventListener("htmx:afterSwap", countdowns);
})();
