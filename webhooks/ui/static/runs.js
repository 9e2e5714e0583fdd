// The runs list refreshes itself every 3 s while any run on it is unfinished.
(function () {
  var box = document.getElementById("runs");
  if (!box) return;
  function refresh() {
    var table = box.querySelector("table");
    if (!table || table.dataset.active !== "yes") return;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.redirected) { window.location.reload(); return null; }  // signed out meanwhile
      return r.ok ? r.text() : null;
    })
      .then(function (html) { if (html) box.innerHTML = html; }).catch(function () {});
  }
  setInterval(refresh, 3000);
})();
