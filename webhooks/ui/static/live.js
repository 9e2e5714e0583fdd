// Live lists (the overview's grid, the runs table): the element with data-changes follows run changes over
// Server-Sent Events and redraws itself from data-fragment when one arrives. No polling.
"use strict";
(function () {
  const box = document.querySelector("[data-changes]");
  if (!box || !window.EventSource) return;
  let waiting = null;
  function redraw() {
    waiting = null;
    fetch(box.dataset.fragment, { credentials: "same-origin" })
      .then((r) => {
        if (r.redirected) { window.location.reload(); return null; }  // signed out meanwhile
        return r.ok ? r.text() : null;
      })
      .then((html) => {
        if (html === null) return;
        box.innerHTML = html;
        box.dataset.redrawn = String(Number(box.dataset.redrawn || 0) + 1);
      })
      .catch(() => {});
  }
  const source = new EventSource(box.dataset.changes);  // reconnects by itself, resuming after its last id
  source.addEventListener("run", () => { if (!waiting) waiting = setTimeout(redraw, 150); });
  source.addEventListener("open", () => { box.dataset.live = "yes"; });
})();
