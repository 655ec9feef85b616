// The check-in shows the new customer's fields only while "a new customer" is chosen; without
// JavaScript they are always there, and the server reads them only for that choice.
(function () {
  "use strict";
  var choice = document.getElementById("customer");
  var fields = document.getElementById("new-customer");
  if (!choice || !fields) { return; }
  function follow() { fields.hidden = choice.value !== "new"; }
  choice.addEventListener("change", follow);
  follow();
})();
