// The run page: live logs over Server-Sent Events (ANSI colours, auto-scroll that stops when the
// reader scrolls up), statuses of steps and graph nodes as they change, a reload when the run ends.
(function () {
  var head = document.querySelector(".run-head");
  if (!head) return;
  var runId = head.dataset.run;
  var FINAL = ["succeeded", "failed", "timed_out", "cancelled", "skipped"];

  function escapeHtml(text) {
    return text.replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }
  function ansi(text) {  // SGR colours and bold; every other escape sequence is dropped
    var out = "", classes = [], last = 0, re = /\x1b\[([0-9;]*)m/g, m;
    function chunk(s) { s = escapeHtml(s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")); return classes.length ? '<span class="' + classes.join(" ") + '">' + s + "</span>" : s; }
    while ((m = re.exec(text))) {
      out += chunk(text.slice(last, m.index)); last = re.lastIndex;
      (m[1] || "0").split(";").forEach(function (code) {
        code = parseInt(code || "0", 10);
        if (code === 0) classes = [];
        else if (code === 1) classes.push("ansi-bold");
        else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
          classes = classes.filter(function (c) { return c === "ansi-bold"; }); classes.push("ansi-" + code);
        }
      });
    }
    return out + chunk(text.slice(last));
  }
  function pane(step) {
    var found = document.querySelector('pre.log[data-log="' + CSS.escape(step) + '"]');
    if (!found && step.indexOf("[") > 0) found = document.querySelector('pre.log[data-log="' + CSS.escape(step.split("[")[0]) + '"]');
    return found;
  }
  function follow(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }
  function setStatus(step, status) {
    var label = status.replace("_", " ");
    document.querySelectorAll('[data-status-of="' + CSS.escape(step) + '"]').forEach(function (b) { b.className = "status " + status; b.textContent = label; });
    document.querySelectorAll('g.node[data-step="' + CSS.escape(step) + '"]').forEach(function (g) {
      g.setAttribute("class", "node " + status);
      var sub = g.querySelector(".sub");
      if (sub) { var rest = sub.textContent.split(" · ").slice(1); sub.textContent = [label].concat(rest).join(" · "); }
    });
  }
  if (head.dataset.focus) {
    var target = document.getElementById("step-" + head.dataset.focus);
    if (target) target.scrollIntoView();
  }
  // A hidden tab lets go of its stream (the server's threads and the browser's connections are
  // few); it picks up after the last line it saw when it is shown again.
  var source = null, lastId = "", ended = false;
  function connect() {
    if (source || ended) return;
    source = new EventSource(head.dataset.logs + (lastId ? "&after=" + encodeURIComponent(lastId) : ""));
    source.addEventListener("line", onLine);
    source.addEventListener("status", onStatus);
    source.addEventListener("end", onEnd);
  }
  function disconnect() { if (source) { source.close(); source = null; } }
  document.addEventListener("visibilitychange", function () { if (document.hidden) disconnect(); else connect(); });
  function onLine(e) {
    lastId = e.lastEventId || lastId;
    var line = JSON.parse(e.data), el = pane(line.step);
    if (!el) return;
    var stick = follow(el);
    var row = document.createElement("div");
    if (line.stream !== "stdout") row.className = line.stream;
    row.innerHTML = ansi(line.text);
    el.appendChild(row);
    if (stick) el.scrollTop = el.scrollHeight;
  }
  function onStatus(e) { lastId = e.lastEventId || lastId; var s = JSON.parse(e.data); setStatus(s.step, s.status); }
  function onEnd(e) {
    ended = true;
    disconnect();
    var status = JSON.parse(e.data).status;
    var badge = document.getElementById("run-status");
    if (badge && FINAL.indexOf(head.dataset.status) < 0) {
      badge.className = "status " + status; badge.textContent = status.replace("_", " ");
      setTimeout(function () { window.location.reload(); }, 800);  // outputs, durations, timeline
    }
  }
  connect();
})();
