// The run page: live logs over Server-Sent Events (ANSI colours, auto-scroll that stops when the
// reader scrolls up, line anchors #step-NAME-L12, ::group:: sections, search, timestamps, the first
// error), statuses of steps and graph nodes as they change, a reload when the run ends.
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
  // Each pane numbers its lines; `::group::TITLE` ... `::endgroup::` (as GitHub Actions writes them) fold.
  var GROUP = /^::group::(.*)$/, ENDGROUP = /^::endgroup::\s*$/;
  function onLine(e) {
    lastId = e.lastEventId || lastId;
    var line = JSON.parse(e.data), el = pane(line.step);
    if (!el) return;
    var stick = follow(el), text = line.text.replace(/\x1b\[[0-9;]*m/g, "");
    if (ENDGROUP.test(text) && el._group) { el._group = null; return; }
    var n = (el._lines = (el._lines || 0) + 1), id = "step-" + el.dataset.log + "-L" + n;
    var row = document.createElement("div");
    row.id = id;
    row.className = "line" + (line.stream !== "stdout" ? " " + line.stream : "");
    row.dataset.time = new Date(line.time * 1000).toISOString().slice(11, 23);
    var number = '<a class="ln" href="#' + escapeHtml(id) + '" aria-label="line ' + n + '">' + n + "</a>";
    var group = GROUP.exec(text);
    if (group) {
      var box = document.createElement("details");
      box.className = "group";
      row.innerHTML = number + '<span class="group-title">' + escapeHtml(group[1] || "group") + "</span>";
      var summary = document.createElement("summary");
      summary.appendChild(row);
      box.appendChild(summary);
      el.appendChild(box);
      el._group = box;
    } else {
      row.innerHTML = number + '<span class="text">' + ansi(line.text) + "</span>";
      (el._group || el).appendChild(row);
    }
    if (location.hash === "#" + id) reveal(row);
    filter(el, row);
    if (stick) el.scrollTop = el.scrollHeight;
  }
  function reveal(row) {
    var box = row.closest("details.group");
    if (box) box.open = true;
    row.classList.add("picked");
    row.scrollIntoView({ block: "center" });
  }
  function query(el) { var box = document.querySelector('input.log-search[data-for="' + CSS.escape(el.dataset.log) + '"]'); return box ? box.value.toLowerCase() : ""; }
  function filter(el, row) {
    var q = query(el);
    var text = (row.querySelector(".text, .group-title") || row).textContent;  // not the line's number
    row.classList.toggle("miss", !!q && text.toLowerCase().indexOf(q) < 0);
  }
  document.addEventListener("input", function (e) {
    if (!e.target.matches("input.log-search")) return;
    var el = pane(e.target.dataset.for);
    if (!el) return;
    var rows = el.querySelectorAll(".line"), shown = 0;
    rows.forEach(function (row) { filter(el, row); if (!row.classList.contains("miss")) shown++; });
    if (e.target.value) el.querySelectorAll("details.group").forEach(function (box) { box.open = true; });
    var count = document.querySelector('[data-count-for="' + CSS.escape(e.target.dataset.for) + '"]');
    if (count) count.textContent = e.target.value ? shown + " of " + rows.length + " lines" : "";
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-first-error], button[data-times]");
    if (!button) return;
    var el = pane(button.dataset.firstError || button.dataset.times);
    if (!el) return;
    if (button.dataset.times) { el.classList.toggle("times"); button.setAttribute("aria-pressed", el.classList.contains("times")); return; }
    var rows = Array.prototype.slice.call(el.querySelectorAll(".line"));
    var hit = rows.filter(function (r) { return r.classList.contains("stderr"); })[0] ||
      rows.filter(function (r) { return /\b(error|failed|fatal|traceback|exception)\b/i.test(r.textContent); })[0];
    var said = document.querySelector('[data-count-for="' + CSS.escape(button.dataset.firstError) + '"]');
    if (hit) { el.querySelectorAll(".picked").forEach(function (r) { r.classList.remove("picked"); }); reveal(hit); history.replaceState(null, "", "#" + hit.id); }
    else if (said) said.textContent = "no error in this log";
  });
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
