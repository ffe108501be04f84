/* eval/report.py: cards, filters, sorting and pagination of the evaluation report (plain JavaScript, no library).
   Only the current page's cards are in the DOM and their images load lazily, so thousands of samples stay
   responsive. Texts are inserted with textContent (model outputs are never parsed as HTML). The filter state is
   kept in the URL fragment, so a filtered view can be bookmarked. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var cards = data.cards;
  var $ = function (id) { return document.getElementById(id); };
  var defaults = { wrong: false, unparseable: false, iou: false, thr: data.iou_threshold, truth: "", category: "",
                   q: "", sort: "input", size: data.page_size, page: 0 };
  var state = Object.assign({}, defaults);

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function distinct(getter) {
    var seen = {};
    var out = [];
    cards.forEach(function (c) {
      [].concat(getter(c)).forEach(function (v) {
        if (v !== null && v !== undefined && !seen[v]) { seen[v] = true; out.push(String(v)); }
      });
    });
    return out.sort();
  }

  function fillSelect(select, values) {
    values.forEach(function (v) { var o = el("option", null, v); o.value = v; select.appendChild(o); });
  }

  function haystack(c) {
    if (c._text === undefined) {
      var parts = [c.title, c.media, c.truth, c.pred, c.source].concat(c.categories || []);
      (c.texts || []).concat(c.raw || []).forEach(function (t) { parts.push(t[1]); });
      c._text = parts.filter(function (p) { return p; }).join("\n").toLowerCase();
    }
    return c._text;
  }

  function matches(c) {
    if (state.wrong && c.correct !== false) { return false; }
    if (state.unparseable && !c.unparseable) { return false; }
    if (state.iou && !(c.iou !== null && c.iou !== undefined && c.iou < Number(state.thr))) { return false; }
    if (state.truth && String(c.truth) !== state.truth) { return false; }
    if (state.category && (c.categories || []).indexOf(state.category) < 0) { return false; }
    if (state.q && haystack(c).indexOf(state.q.toLowerCase()) < 0) { return false; }
    return true;
  }

  function keyed(field, direction) {
    return function (a, b) {
      var x = a[field], y = b[field];
      var nx = x === null || x === undefined, ny = y === null || y === undefined;
      if (nx !== ny) { return nx ? 1 : -1; }  // samples without the value last
      if (!nx && x !== y) { return direction * (x - y); }
      return a.i - b.i;
    };
  }

  function ordered(list) {
    if (state.sort === "iou") { return list.sort(keyed("iou", 1)); }
    if (state.sort === "tdist") { return list.sort(keyed("tdist", -1)); }
    if (state.sort === "judge") { return list.sort(keyed("judge", 1)); }
    return list;
  }

  function badge(label, value) {
    var v = value === null || value === undefined ? "unparseable" : String(value);
    return el("span", "badge " + (v === "fake" || v === "real" ? v : v === "unparseable" ? "none" : ""),
              label + " " + v);
  }

  function renderCard(c) {
    var card = el("article", "card " + (c.correct === false ? "wrong" : c.correct === true ? "ok" : "unknown"));
    card.id = "sample-" + c.i;
    card.dataset.index = c.i;
    var head = el("header");
    head.appendChild(el("span", "idx", "#" + (c.i + 1) + " · line " + c.line));
    head.appendChild(el("span", "title", c.title));
    head.appendChild(badge("true", c.truth));
    head.appendChild(el("span", null, "→"));
    head.appendChild(badge("pred", c.pred));
    card.appendChild(head);
    if (c.chips && c.chips.length) {
      var chips = el("div", "chips");
      c.chips.forEach(function (ch) { chips.appendChild(el("span", "chip " + (ch[2] || ""), ch[0] + ": " + ch[1])); });
      card.appendChild(chips);
    }
    if (c.frames && c.frames.length) {
      var frames = el("div", "frames");
      c.frames.forEach(function (f) {
        var fig = el("figure");
        if (f.src) {
          var img = el("img");
          img.loading = "lazy";
          img.decoding = "async";
          if (f.w && f.h) { img.width = f.w; img.height = f.h; }
          img.alt = f.caption || "";
          img.src = f.src;
          fig.appendChild(img);
        } else {
          fig.appendChild(el("div", "missing", f.error || "no picture"));
        }
        fig.appendChild(el("figcaption", null, f.caption || ""));
        frames.appendChild(fig);
      });
      card.appendChild(frames);
    }
    if (c.texts && c.texts.length) {
      var dl = el("dl");
      c.texts.forEach(function (t) { dl.appendChild(el("dt", null, t[0])); dl.appendChild(el("dd", null, t[1])); });
      card.appendChild(dl);
    }
    if (c.raw && c.raw.length) {
      var details = el("details");
      details.appendChild(el("summary", null, "raw texts"));
      c.raw.forEach(function (t) { details.appendChild(el("dt", null, t[0])); details.appendChild(el("pre", null, t[1])); });
      card.appendChild(details);
    }
    return card;
  }

  function pager(target, pages, shown, total) {
    target.textContent = "";
    function button(text, page, id) {
      var b = el("button", null, text);
      b.type = "button";
      if (id) { b.id = id; }
      b.disabled = page < 0 || page >= pages || page === state.page;
      b.addEventListener("click", function () { state.page = page; update(true); });
      target.appendChild(b);
    }
    var top = target.id === "pager-top";
    button("«", 0, top ? "first-page" : null);
    button("‹", state.page - 1, top ? "prev-page" : null);
    var info = el("span", "info", "page " + (state.page + 1) + " of " + Math.max(pages, 1) + " · " + shown);
    if (top) { info.id = "page-info"; }
    target.appendChild(info);
    button("›", state.page + 1, top ? "next-page" : null);
    button("»", pages - 1, top ? "last-page" : null);
    if (total !== undefined) { target.appendChild(el("span", "note", total)); }
  }

  function writeHash() {
    var diff = {};
    Object.keys(state).forEach(function (k) { if (state[k] !== defaults[k]) { diff[k] = state[k]; } });
    var hash = Object.keys(diff).length ? "#view=" + encodeURIComponent(JSON.stringify(diff)) : "";
    if (location.hash !== hash && (hash || location.hash.indexOf("#view=") === 0)) {
      history.replaceState(null, "", hash || location.pathname + location.search);
    }
  }

  function readHash() {
    if (location.hash.indexOf("#view=") !== 0) { return; }
    try {
      var saved = JSON.parse(decodeURIComponent(location.hash.slice(6)));
      Object.keys(defaults).forEach(function (k) { if (k in saved) { state[k] = saved[k]; } });
    } catch (e) {
      state = Object.assign({}, defaults);
    }
  }

  function syncForm() {
    $("filter-wrong").checked = state.wrong;
    $("filter-unparseable").checked = state.unparseable;
    $("filter-iou").checked = state.iou;
    $("iou-threshold").value = state.thr;
    $("filter-truth").value = state.truth;
    $("filter-category").value = state.category;
    $("filter-search").value = state.q;
    $("sort").value = state.sort;
    $("page-size").value = String(state.size);
  }

  function update(scroll) {
    var list = ordered(cards.filter(matches));
    var size = Number(state.size) || 25;
    var pages = Math.ceil(list.length / size);
    if (state.page >= pages) { state.page = Math.max(0, pages - 1); }
    var start = state.page * size;
    var slice = list.slice(start, start + size);
    var box = $("cards");
    box.textContent = "";
    var fragment = document.createDocumentFragment();
    slice.forEach(function (c) { fragment.appendChild(renderCard(c)); });
    box.appendChild(fragment);
    if (!slice.length) { box.appendChild(el("p", null, "No sample matches the filters.")).id = "empty"; }
    var shown = list.length ? (start + 1) + "–" + (start + slice.length) + " of " + list.length + " samples" :
      "0 samples";
    var filtered = list.length !== cards.length ? "(filtered from " + cards.length + ")" : undefined;
    pager($("pager-top"), pages, shown, filtered);
    pager($("pager-bottom"), pages, shown);
    document.body.dataset.shown = String(slice.length);
    document.body.dataset.matching = String(list.length);
    writeHash();
    if (scroll) { $("samples").scrollIntoView(); }
  }

  function bind(id, key, read) {
    var node = $(id);
    var handler = function () { state[key] = read(node); state.page = 0; update(false); };
    node.addEventListener("input", handler);
    node.addEventListener("change", handler);
  }

  fillSelect($("filter-truth"), distinct(function (c) { return c.truth; }));
  fillSelect($("filter-category"), distinct(function (c) { return c.categories || []; }));
  if (!data.has_iou) { $("filter-iou").parentNode.style.display = "none"; }
  if (!data.has_iou) { document.querySelector(".legend").style.display = "none"; }  // no boxes drawn
  if (!data.has_iou) { $("sort").querySelector("option[value=iou]").remove(); }
  if (!data.has_iou) { $("sort").querySelector("option[value=tdist]").remove(); }
  if (!data.has_judge) { $("sort").querySelector("option[value=judge]").remove(); }
  bind("filter-wrong", "wrong", function (n) { return n.checked; });
  bind("filter-unparseable", "unparseable", function (n) { return n.checked; });
  bind("filter-iou", "iou", function (n) { return n.checked; });
  bind("iou-threshold", "thr", function (n) { return n.value === "" ? defaults.thr : Number(n.value); });
  bind("filter-truth", "truth", function (n) { return n.value; });
  bind("filter-category", "category", function (n) { return n.value; });
  bind("filter-search", "q", function (n) { return n.value; });
  bind("sort", "sort", function (n) { return n.value; });
  bind("page-size", "size", function (n) { return Number(n.value); });
  $("reset-filters").addEventListener("click", function () { state = Object.assign({}, defaults); syncForm(); update(false); });
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  readHash();
  syncForm();
  update(false);
  document.body.dataset.ready = "1";
}());
