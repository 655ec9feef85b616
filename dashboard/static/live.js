// Live board: each server-sent event carries a machine's card; only what changed in it is
// changed on the page (a text, a class, a value), so nothing flashes and nothing jumps.
// The browser's EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var link = document.getElementById("link");
  if (!board || !window.EventSource) { return; }

  function linkState(ok) {
    link.textContent = ok ? link.dataset.ok : link.dataset.lost;
    link.className = "link-state " + (ok ? "ok" : "lost");
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
  }

  function syncAttributes(old, fresh) {
    var i;
    for (i = old.attributes.length - 1; i >= 0; i--) {
      if (!fresh.hasAttribute(old.attributes[i].name)) { old.removeAttribute(old.attributes[i].name); }
    }
    for (i = 0; i < fresh.attributes.length; i++) {
      var a = fresh.attributes[i];
      if (old.getAttribute(a.name) !== a.value) { old.setAttribute(a.name, a.value); }
    }
    if (old.nodeName === "PROGRESS" && old.value !== fresh.value) { old.value = fresh.value; }
  }

  // Make `old` look like `fresh`, touching only the nodes that differ.
  function morph(old, fresh) {
    if (old.nodeType === Node.TEXT_NODE) {
      if (old.nodeValue !== fresh.nodeValue) { old.nodeValue = fresh.nodeValue; }
      return;
    }
    syncAttributes(old, fresh);
    var olds = Array.prototype.slice.call(old.childNodes);
    var news = Array.prototype.slice.call(fresh.childNodes);
    news.forEach(function (node, i) {
      if (i >= olds.length) { old.appendChild(node); }
      else if (sameKind(olds[i], node)) { morph(olds[i], node); }
      else { old.replaceChild(node, olds[i]); }
    });
    for (var j = news.length; j < olds.length; j++) { old.removeChild(olds[j]); }
  }

  function place(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var card = holder.firstElementChild;
    if (!card) { return; }
    var old = document.getElementById(card.id);
    if (old) {
      morph(old, card);
    } else {
      var empty = document.getElementById("no-machines");
      if (empty) { empty.remove(); }
      board.appendChild(card);
    }
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
