// paperscope pages: enhancements only, every page works without this file.
// Likes and dislikes live in this browser's localStorage ("paperscope.votes":
// {id: {v: 1 | -1, title}}); the server never stores them. Everything shown from data is
// set with textContent, never as HTML.
"use strict";
(function () {
  var KEY = "paperscope.votes";
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(votes) { localStorage.setItem(KEY, JSON.stringify(votes)); }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text != null) e.textContent = text;
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function paperHref(id) { return "/papers/" + encodeURIComponent(id); }

  // Paper page: like / dislike.
  var box = document.querySelector(".votes[data-id]");
  if (box) {
    var id = box.dataset.id;
    var show = function () {
      var v = (load()[id] || {}).v || 0;
      box.querySelectorAll("button.vote").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.vote) === v));
      });
    };
    box.querySelectorAll("button.vote").forEach(function (b) {
      b.addEventListener("click", function () {
        var votes = load(), want = Number(b.dataset.vote);
        if ((votes[id] || {}).v === want) delete votes[id];
        else votes[id] = { v: want, title: box.dataset.title };
        save(votes);
        show();
      });
    });
    box.hidden = false;
    show();
  }

  // Copy buttons.
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    var src = document.getElementById(b.dataset.copy);
    if (!src || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(src.textContent).then(
        function () { b.textContent = "Copied"; },
        function () { b.textContent = "Copy failed: select the text instead"; });
    });
  });

  // For-you page.
  var fy = document.getElementById("for-you");
  if (!fy) return;
  var status = document.getElementById("fy-status");
  var results = document.getElementById("fy-results");
  // "#likes=a,b&dislikes=c" (the share link) adds to what this browser holds.
  if (location.hash.length > 1) {
    var params = new URLSearchParams(location.hash.slice(1)), votes = load();
    [["likes", 1], ["dislikes", -1]].forEach(function (p) {
      (params.get(p[0]) || "").split(",").filter(Boolean).forEach(function (i) {
        if (!votes[i]) votes[i] = { v: p[1], title: i };
      });
    });
    save(votes);
    history.replaceState(null, "", location.pathname);
  }
  function ids(votes, v) { return Object.keys(votes).filter(function (i) { return votes[i].v === v; }); }
  function renderVotes() {
    var votes = load(), list = document.getElementById("fy-votes");
    list.textContent = "";
    var all = Object.keys(votes);
    document.getElementById("fy-empty").hidden = all.length > 0;
    document.getElementById("fy-export").hidden = all.length === 0;
    all.forEach(function (i) {
      var li = el("li");
      li.appendChild(el("span", votes[i].v > 0 ? "Liked: " : "Disliked: "));
      li.appendChild(el("a", votes[i].title || i, { href: paperHref(i) }));
      var rm = el("button", "Remove", { type: "button", "class": "fy-remove" });
      rm.setAttribute("aria-label", "Remove " + (votes[i].title || i));
      rm.addEventListener("click", function () { var v = load(); delete v[i]; save(v); refresh(); });
      li.appendChild(document.createTextNode(" "));
      li.appendChild(rm);
      list.appendChild(li);
    });
    var liked = ids(votes, 1), disliked = ids(votes, -1);
    document.querySelectorAll("#fy-export a[data-format]").forEach(function (a) {
      a.href = "/export?" + new URLSearchParams({ ids: liked.join(","), format: a.dataset.format });
    });
    var json = JSON.stringify({ likes: liked, dislikes: disliked }, null, 1);
    document.getElementById("fy-json").href = "data:application/json;charset=utf-8," + encodeURIComponent(json);
    document.getElementById("fy-share").href = "/for-you#" + new URLSearchParams({ likes: liked.join(","), dislikes: disliked.join(",") });
  }
  function recommend() {
    var votes = load(), pos = ids(votes, 1), neg = ids(votes, -1);
    results.textContent = "";
    if (pos.length === 0) {
      status.textContent = "Like papers on their pages and your recommendations appear here.";
      return;
    }
    status.textContent = "Finding papers like your " + pos.length + " liked…";
    fetch("/v1/recommend", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ positive: pos, negative: neg, k: Number(fy.dataset.k) || 20 })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) {
        status.textContent = "Cannot recommend: " + ((res.body.error || {}).message || "error");
        return;
      }
      var hits = res.body.results || [];
      status.textContent = hits.length ? "Papers like the " + pos.length + " you liked" + (neg.length ? ", unlike the " + neg.length + " you disliked" : "") + ":" : "No recommendations.";
      hits.forEach(function (h) {
        var li = el("li", null, { "class": "hit" });
        var h2 = el("h2", null, { "class": "hit-title" });
        h2.appendChild(el("a", h.title || h.id, { href: paperHref(h.id) }));
        li.appendChild(h2);
        var meta = el("p", null, { "class": "meta" });
        if (h.authors && h.authors.length) meta.appendChild(el("span", h.authors.join(", ")));
        if (h.date) meta.appendChild(el("span", h.date, { "class": "date" }));
        (h.categories || []).forEach(function (c) { meta.appendChild(el("span", c, { "class": "cat" })); });
        meta.appendChild(el("span", "score " + h.score.toFixed(3)));
        li.appendChild(meta);
        if (h.snippet) li.appendChild(el("p", h.snippet, { "class": "snippet" }));
        results.appendChild(li);
      });
    }).catch(function (e) { status.textContent = "Cannot recommend: " + e; });
  }
  function refresh() { renderVotes(); recommend(); }
  document.getElementById("fy-clear").addEventListener("click", function () { save({}); refresh(); });
  refresh();
})();
