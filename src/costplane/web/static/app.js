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
  // the viewer's IANA zone: remembered in a cookie so the server renders times in it, and applied at once
  var ZONE_COOKIE = "costplane_tz";
  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }
  function rememberZone() {
    var zone = browserZone();
    if (!zone) return;
    var current = document.cookie.split("; ").filter(function (c) { return c.indexOf(ZONE_COOKIE + "=") === 0; });
    if (current.length && decodeURIComponent(current[0].slice(ZONE_COOKIE.length + 1)) === zone) return;
    document.cookie = ZONE_COOKIE + "=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Strict";
  }
  function localTimes() {
    var zone = browserZone();
    if (!zone || !window.Intl) return;
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var opts = { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
                   hourCycle: "h23", timeZone: zone, timeZoneName: "short" };
      if (el.hasAttribute("data-seconds")) opts.second = "2-digit";
      var parts = {};
      new Intl.DateTimeFormat("en-GB", opts).formatToParts(when).forEach(function (p) { parts[p.type] = p.value; });
      el.textContent = parts.day + " " + parts.month + " " + parts.year + ", " + parts.hour + ":" + parts.minute +
        (parts.second ? ":" + parts.second : "") + " " + parts.timeZoneName;
      el.title = el.getAttribute("datetime");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    rememberZone();
    localTimes();
    connect();
    countdowns();
    setInterval(countdowns, 1000);
  });
  document.addEventListener("htmx:afterSwap", function () { countdowns(); localTimes(); });
})();
