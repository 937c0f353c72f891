/* Wall watchdog: marks the page stale when the server stops pushing, and reloads it once the server is back.
 *
 * The server pushes a heartbeat (#wall-heartbeat) at least every second. After STALE_AFTER_MS without one
 * the header says "reconnecting"; Dash's websocket usually reconnects by itself (server restart). When it
 * cannot — a redeploy changed the callback, or the browser gave up after a long outage — the page is
 * reloaded as soon as the server answers /readyz again, so nobody has to touch the screen.
 */
(function () {
  "use strict";
  var STALE_AFTER_MS = 5000;
  var RELOAD_AFTER_MS = 35000;
  var PROBE_EVERY_MS = 5000;
  var TICK_MS = 500;
  var READY_URL = "/readyz";

  var lastBeat = Date.now();
  var lastProbe = 0;
  var probing = false;
  var watched = null;
  var observer = new MutationObserver(function () { lastBeat = Date.now(); });

  function watchHeartbeat() {
    var element = document.getElementById("wall-heartbeat");
    if (element && element !== watched) {
      observer.disconnect();
      observer.observe(element, { childList: true, characterData: true, subtree: true });
      watched = element;
    }
  }

  function probeAndReload() {
    probing = true;
    lastProbe = Date.now();
    fetch(READY_URL, { cache: "no-store" })
      .then(function (response) { if (response.ok) { window.location.reload(); } })
      .catch(function () {})
      .then(function () { probing = false; });
  }

  function tick() {
    watchHeartbeat();
    var quiet = Date.now() - lastBeat;
    var state = quiet > STALE_AFTER_MS ? "stale" : "live";
    if (document.documentElement.dataset.wall !== state) {
      document.documentElement.dataset.wall = state;
    }
    if (quiet > RELOAD_AFTER_MS && !probing && Date.now() - lastProbe > PROBE_EVERY_MS) {
      probeAndReload();
    }
  }

  document.documentElement.dataset.wall = "stale";
  window.setInterval(tick, TICK_MS);
})();
