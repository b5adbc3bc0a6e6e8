// mlsecops dashboard: the only script, loaded from our own origin (no inline script anywhere).
// It polls the audit chain's verification status where a page shows it.
"use strict";

(function () {
  function pollChain(el) {
    var url = el.getAttribute("data-url");
    var tries = 0;
    function show(doc) {
      el.classList.remove("pending", "verified", "failed");
      if (doc.state === "verified") {
        el.classList.add("verified");
        el.textContent = "Chain verified: " + doc.events + " events intact up to event " + doc.head +
          " (checked " + doc.checked_at + " in " + doc.seconds + " s)";
      } else if (doc.state === "failed") {
        el.classList.add("failed");
        el.textContent = "Chain NOT verified" + (doc.bad_seq ? " at event " + doc.bad_seq : "") + ": " + doc.reason;
      } else {
        el.classList.add("pending");
        el.textContent = "Chain: verifying " + doc.head + " events\u2026";
      }
    }
    function tick() {
      tries += 1;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { state: "failed", reason: "status unavailable (" + r.status + ")" }; })
        .then(function (doc) {
          show(doc);
          if (doc.state === "verifying" && tries < 600) { window.setTimeout(tick, tries < 20 ? 250 : 1000); }
        })
        .catch(function () { el.textContent = "Chain: status unavailable"; });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var chain = document.getElementById("chain-status");
    if (chain) { pollChain(chain); }
  });
})();
