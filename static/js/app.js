// Live SLA countdowns: every element with data-due (ISO 8601) shows the time left, red when overdue.
(function () {
  function fmt(seconds) {
    var s = Math.abs(Math.round(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    // The words of leads/formatting.py format_duration: "2 days 3 h", "1 h 05 min", "3 min 20 s", "45 s".
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + (d === 1 ? " day" : " days") + (h ? " " + h + " h" : "");
    if (h) return h + " h " + pad(m) + " min";
    if (m) return m + " min " + pad(r) + " s";
    return r + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent = left < 0 ? "overdue " + fmt(left) : fmt(left) + " left";
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 900);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();

// Bars sized by data: data-width / data-height (percent) become the element's width / height. Set here
// because the Content-Security-Policy allows no style="" in the markup (the CSSOM is not inline style).
(function () {
  function size(root) {
    (root || document).querySelectorAll("[data-width], [data-height]").forEach(function (el) {
      ["width", "height"].forEach(function (side) {
        var value = parseFloat(el.dataset[side]);
        if (isFinite(value)) el.style[side] = Math.max(0, Math.min(100, value)) + "%";
      });
    });
  }
  size(document);
  document.addEventListener("htmx:afterSwap", function () { size(document); });
})();

// <select data-autosubmit>: choosing an option submits its form (no onchange="": the CSP allows no
// inline script).
document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("select[data-autosubmit]") && event.target.form) {
    event.target.form.submit();
  }
});

// A search box's "change" (it fires when the box loses focus, e.g. on a click on a column header)
// must not send its form again: htmx already sent it as one typed ("input"), and a late second
// answer would undo the header's sort. Stopped before it reaches the form (capture phase).
document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("input[type=search]")) event.stopPropagation();
}, true);
