// audlang report: search and filters on the index, highlighting on the graph. No dependencies.
(function () {
  "use strict";

  function indexFilters() {
    var search = document.getElementById("search");
    if (!search) return;
    var file = document.getElementById("filter-file");
    var destination = document.getElementById("filter-destination");
    var paused = document.getElementById("filter-paused");
    var shown = document.getElementById("shown");
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.item"));

    function apply() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var visible = 0;
      rows.forEach(function (row) {
        var text = row.getAttribute("data-search");
        var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
        if (ok && file.value) ok = row.getAttribute("data-file") === file.value;
        if (ok && destination.value) {
          ok = row.getAttribute("data-destinations").split("|").indexOf(destination.value) !== -1;
        }
        if (ok && paused.value) ok = row.getAttribute("data-paused") === paused.value;
        row.hidden = !ok;
        if (ok) visible += 1;
      });
      document.querySelectorAll("table.objects").forEach(function (table) {
        var items = table.querySelectorAll("tr.item");
        var n = 0;
        items.forEach(function (r) { if (!r.hidden) n += 1; });
        var count = document.querySelector('[data-count-for="' + table.id + '"]');
        if (count) count.textContent = n === items.length ? "(" + n + ")" : "(" + n + " of " + items.length + ")";
        var none = table.parentNode.querySelector(".none");
        if (none) none.hidden = n !== 0;
      });
      shown.textContent = visible + " of " + rows.length + " shown";
      var state = [search.value, file.value, destination.value, paused.value];
      try { history.replaceState(null, "", state.some(Boolean) ? "#" + encodeURIComponent(JSON.stringify(state)) : "#"); }
      catch (e) { /* file:// in some browsers refuses replaceState; the filters work without it */ }
    }

    if (location.hash.length > 1) {
      try {
        var saved = JSON.parse(decodeURIComponent(location.hash.slice(1)));
        search.value = saved[0] || ""; file.value = saved[1] || "";
        destination.value = saved[2] || ""; paused.value = saved[3] || "";
      } catch (e) { /* an unrelated fragment */ }
    }
    [search, file, destination, paused].forEach(function (el) {
      el.addEventListener("input", apply);
      el.addEventListener("change", apply);
    });
    apply();
  }

  function explorerSearch() {
    var input = document.getElementById("explorer-search");
    if (!input) return;
    var sections = Array.prototype.slice.call(document.querySelectorAll("section.explorer-table"));
    var shown = document.getElementById("explorer-shown");
    var none = document.getElementById("explorer-none");
    var total = document.querySelectorAll("tr.column").length;

    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var visible = 0;
      sections.forEach(function (section) {
        var tableText = section.getAttribute("data-search");
        var rows = Array.prototype.slice.call(section.querySelectorAll("tr.column"));
        var any = false;
        rows.forEach(function (row) {
          var text = tableText + " " + row.getAttribute("data-search");
          var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
          row.hidden = !ok;
          if (ok) { any = true; visible += 1; }
        });
        section.hidden = !any;
      });
      shown.textContent = visible + " of " + total + " columns shown";
      none.hidden = visible !== 0;
    }

    input.addEventListener("input", apply);
    apply();
    // An attribute's link (#attr-…) opens with that row marked.
    if (location.hash.indexOf("#attr-") === 0) {
      var target = document.getElementById(location.hash.slice(1));
      if (target) { target.classList.add("target"); target.scrollIntoView(); }
    }
  }

  function graphSearch() {
    var input = document.getElementById("graph-search");
    var graph = document.getElementById("graph");
    if (!input || !graph) return;
    var links = Array.prototype.slice.call(graph.querySelectorAll("a.node-link"));
    var edges = Array.prototype.slice.call(graph.querySelectorAll("path.edge"));
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase().trim();
      var lit = {};
      links.forEach(function (a) {
        var g = a.querySelector("g.node");
        var match = q && a.getAttribute("data-name").toLowerCase().indexOf(q) !== -1;
        g.classList.toggle("match", !!match);
        g.classList.toggle("dim", !!q && !match);
        if (match) lit[a.getAttribute("data-key")] = true;
      });
      edges.forEach(function (e) {
        e.classList.toggle("lit", !!(lit[e.getAttribute("data-from")] || lit[e.getAttribute("data-to")]));
      });
      var first = graph.querySelector("g.node.match rect");
      if (first && first.scrollIntoView) first.scrollIntoView({block: "center", inline: "center"});
    });
    links.forEach(function (a) {
      a.addEventListener("mouseenter", function () {
        var key = a.getAttribute("data-key");
        edges.forEach(function (e) {
          e.classList.toggle("lit", e.getAttribute("data-from") === key || e.getAttribute("data-to") === key);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { indexFilters(); graphSearch(); explorerSearch(); });
})();
