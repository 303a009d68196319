// Reload list pages every data-refresh seconds, unless someone is typing in a form or the tab is
// hidden: an operator never loses what they were entering.
(function () {
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds) { return; }
  var edited = false;
  document.addEventListener("input", function () { edited = true; });
  setInterval(function () {
    var active = document.activeElement;
    var typing = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA" ||
                            active.tagName === "SELECT");
    if (!edited && !typing && document.visibilityState === "visible") { location.reload(); }
  }, seconds * 1000);
})();
