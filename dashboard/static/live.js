// Live board: replace a machine's card with the one each server-sent event carries.
// The browser's EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var link = document.getElementById("link");
  if (!board || !window.EventSource) { return; }
  if (/[?&]wall=1/.test(location.search)) { document.body.classList.add("wall"); }

  function linkState(ok) {
    link.textContent = ok ? link.dataset.ok : link.dataset.lost;
    link.className = "link-state " + (ok ? "ok" : "lost");
  }

  function place(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var card = holder.firstElementChild;
    if (!card) { return; }
    var old = document.getElementById(card.id);
    if (old) {
      old.replaceWith(card);
    } else {
      var empty = document.getElementById("no-machines");
      if (empty) { empty.remove(); }
      board.appendChild(card);
    }
    card.classList.add("changed");
    setTimeout(function () { card.classList.remove("changed"); }, 800);
  }

  var source = new EventSource(board.dataset.events);
  source.onopen = function () { linkState(true); };
  source.onerror = function () { linkState(false); };
  source.addEventListener("machine", function (event) {
    var data = JSON.parse(event.data);
    place(data.html);
    board.dataset.lastEventId = event.lastEventId;
  });
})();
