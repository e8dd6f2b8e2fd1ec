// dedup report index: sort, filter and page the clusters table from the JSON blob in #report-data.
// Page text is hostile: it only ever reaches the page through textContent, never innerHTML, and
// only http(s) URLs (checked by the generator) become links.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var L = data.labels, rows = data.rows, names = data.site_names, PAGE = data.page_size;
  var state = { site: "", text: "", from: "", to: "", min: 0, key: "size", dir: -1, page: 0 };
  var $ = function (id) { return document.getElementById(id); };
  var body = $("clusters-body");

  function fmt(s, vals) { return s.replace(/\{(\w+)\}/g, function (m, k) { return vals[k]; }); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function siteName(host) { return names[host] || host; }
  function confClass(c) { return c >= data.conf_high ? "high" : c >= data.conf_medium ? "medium" : "low"; }
  function day(iso) { return iso ? iso.slice(0, 10) : ""; }
  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "—"; }

  function matches(r) {
    if (state.site && r.sites.indexOf(state.site) < 0) return false;
    if (state.min && r.size < state.min) return false;
    if (state.from && (!r.last || day(r.last) < state.from)) return false;
    if (state.to && (!r.first || day(r.first) > state.to)) return false;
    if (state.text) {
      var t = state.text.toLowerCase();
      if ((r.title || "").toLowerCase().indexOf(t) < 0) return false;
    }
    return true;
  }
  function value(r, key) {
    if (key === "original") return r.orig ? siteName(r.orig) : r.ext || "";
    if (key === "sites") return r.sites.length;
    var v = r[key];
    return v === null || v === undefined ? "" : v;
  }
  function compare(a, b) {
    var x = value(a, state.key), y = value(b, state.key);
    if (x < y) return -state.dir;
    if (x > y) return state.dir;
    return a.id - b.id;
  }

  function row(r) {
    var tr = el("tr");
    var id = el("td", "num");
    var a = el("a", null, "#" + r.id);
    a.href = "c/" + r.id + ".html";
    id.appendChild(a);
    tr.appendChild(id);
    tr.appendChild(el("td", "num", r.size));
    var title = el("td");
    var ta = el("a", null, r.title || "—");
    ta.href = "c/" + r.id + ".html";
    title.appendChild(ta);
    tr.appendChild(title);
    var orig = el("td"), conf = el("td");
    if (r.orig) orig.appendChild(el("span", "badge original", siteName(r.orig)));
    else if (r.ext) orig.appendChild(el("span", "badge compilation", L.external + ": " + r.ext));
    else orig.textContent = "—";
    if (r.orig || r.ext) {
      var cls = confClass(r.conf);
      conf.appendChild(el("span", "badge " + cls, L["conf_" + cls] + " " + r.conf.toFixed(2)));
    } else conf.textContent = "—";
    tr.appendChild(orig);
    tr.appendChild(conf);
    tr.appendChild(el("td", "nowrap", when(r.first)));
    tr.appendChild(el("td", "nowrap", when(r.last)));
    var shown = r.sites.slice(0, 4).map(siteName).join("、");
    if (r.sites.length > 4) shown += " " + fmt(L.more_sites, { n: r.sites.length - 4 });
    tr.appendChild(el("td", null, shown));
    return tr;
  }

  function render() {
    var list = rows.filter(matches).sort(compare);
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    if (state.page >= pages) state.page = pages - 1;
    var part = list.slice(state.page * PAGE, (state.page + 1) * PAGE);
    var frag = document.createDocumentFragment();
    part.forEach(function (r) { frag.appendChild(row(r)); });
    if (!part.length) {
      var tr = el("tr"), td = el("td", "muted", L.nothing);
      td.colSpan = 8;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    $("shown").textContent = fmt(L.showing, { shown: list.length, total: rows.length });
    $("page").textContent = fmt(L.page, { page: state.page + 1, pages: pages });
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      if (th.dataset.sort === state.key) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  // The filter form: sites by number of clusters, each shown with its name.
  var counts = {};
  rows.forEach(function (r) { r.sites.forEach(function (s) { counts[s] = (counts[s] || 0) + 1; }); });
  var select = $("f-site");
  select.appendChild(el("option", null, L.all_sites)).value = "";
  Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); })
    .forEach(function (s) {
      var o = el("option", null, siteName(s) + (names[s] && names[s] !== s ? " · " + s : "") + " (" + counts[s] + ")");
      o.value = s;
      select.appendChild(o);
    });
  $("filters").hidden = false;
  $("pager").hidden = false;
  function read() {
    state.site = select.value;
    state.text = $("f-text").value.trim();
    state.from = $("f-from").value;
    state.to = $("f-to").value;
    state.min = parseInt($("f-min").value, 10) || 0;
    state.page = 0;
    render();
  }
  ["f-site", "f-text", "f-from", "f-to", "f-min"].forEach(function (id) {
    $(id).addEventListener("input", read);
    $(id).addEventListener("change", read);
  });
  $("f-reset").addEventListener("click", function () {
    ["f-text", "f-from", "f-to", "f-min"].forEach(function (id) { $(id).value = ""; });
    select.value = "";
    read();
  });
  $("prev").addEventListener("click", function () { state.page -= 1; render(); });
  $("next").addEventListener("click", function () { state.page += 1; render(); });
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.dataset.sort;
      state.dir = state.key === key ? -state.dir : (key === "title" || key === "original" ? 1 : -1);
      state.key = key;
      state.page = 0;
      render();
    });
  });
  render();
})();
