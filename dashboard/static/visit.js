// A visit's page follows its running sessions: it reloads every few seconds while one runs,
// unless somebody is typing in one of its forms.
(function () {
  "use strict";
  var marker = document.getElementById("refresh");
  if (!marker) { return; }
  var touched = false;
  document.addEventListener("input", function () { touched = true; });
  window.setInterval(function () {
    var active = document.activeElement;
    var typing = active && ["INPUT", "TEXTAREA", "SELECT"].indexOf(active.tagName) >= 0;
    if (!touched && !typing) { window.location.reload(); }
  }, Number(marker.dataset.seconds || "20") * 1000);
})();
