/* site.js: the site's only script, and an optional one: every page is complete without it.
   - Landing page: ticks the countdown ([data-launch]) every second.
   - Dashboard: polls the JSON named by [data-live] every data-refresh-ms and updates the
     figures ([data-stat]), the platform tables, the node table and the charts in place. All text goes in
     through textContent, never as markup. */
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function countdown(el) {
    var target = Date.parse(el.getAttribute("data-launch"));
    if (isNaN(target)) return;
    var units = {};
    el.querySelectorAll("[data-unit]").forEach(function (u) { units[u.getAttribute("data-unit")] = u; });
    function tick() {
      var left = Math.max(0, Math.floor((target - Date.now()) / 1000));
      if (units.days) units.days.textContent = String(Math.floor(left / 86400));
      if (units.hours) units.hours.textContent = pad(Math.floor(left % 86400 / 3600));
      if (units.minutes) units.minutes.textContent = pad(Math.floor(left % 3600 / 60));
      if (units.seconds) units.seconds.textContent = pad(left % 60);
      if (left > 0) setTimeout(tick, 1000 - Date.now() % 1000);
    }
    tick();
  }

  function count(n) { return Number(n).toLocaleString("en-US"); }

  function duration(ms) {
    if (ms < 1000) return ms + " ms";
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + "." + Math.floor(ms % 1000 / 100) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + pad(Math.floor(s % 3600 / 60)) + "m";
    return Math.floor(s / 86400) + "d " + pad(Math.floor(s % 86400 / 3600)) + "h";
  }

  function bytes(v) {
    var units = ["B", "KB", "MB", "GB", "TB"], u = 0;
    if (v < 1000) return v + " B";
    while (v >= 1000 && u < 4) { v /= 1000; u++; }
    return v.toFixed(1) + " " + units[u];
  }

  function lookup(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }

  function niceMax(v) {
    var m = 1;
    for (;;) {
      if (v <= m) return m;
      if (v <= 2 * m) return 2 * m;
      if (v <= 5 * m) return 5 * m;
      m *= 10;
    }
  }

  function updateChart(svg, series) {
    if (!series) return;
    var top = Number(svg.getAttribute("data-top")), ph = Number(svg.getAttribute("data-plot-h"));
    var max = niceMax(Math.max.apply(null, series.values.concat([0])));
    svg.querySelectorAll("rect.bar").forEach(function (r) {
      var i = Number(r.getAttribute("data-i")), v = series.values[i] || 0;
      var h = Math.floor(v * ph / max);
      if (v > 0 && h < 1) h = 1;
      r.setAttribute("y", String(top + ph - h));
      r.setAttribute("height", String(h));
      var t = r.querySelector("title");
      if (t) t.textContent = series.labels[i] + ": " + count(v) + " messages";
    });
    svg.querySelectorAll("text.ylabel").forEach(function (t) {
      var frac = Number(t.getAttribute("data-frac"));
      t.textContent = count(Math.floor(max * frac / 2)) + (frac === 1 && max % 2 ? ".5" : "");
    });
    svg.querySelectorAll("text.xlabel").forEach(function (t) {
      var l = series.labels[Number(t.getAttribute("data-i"))] || "";
      t.textContent = l.length > 10 ? l.substr(11, 5) : l.substr(5, 5);
    });
  }

  function updatePlatforms(table, rows) {
    if (!rows || !rows.length) return;
    var body = table.tBodies[0], sum = 0;
    rows.forEach(function (r) { sum += r.count; });
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      var name = document.createElement("td"); name.textContent = r.name;
      var num = document.createElement("td"); num.className = "num"; num.textContent = count(r.count);
      var share = document.createElement("td"), meter = document.createElement("meter");
      meter.min = 0; meter.max = 100; meter.value = sum ? Math.floor(r.count * 100 / sum) : 0;
      share.appendChild(meter);
      tr.appendChild(name); tr.appendChild(num); tr.appendChild(share);
      body.appendChild(tr);
    });
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  // The node table, rebuilt from stats.json's nodes (the same cells as the page's).
  function updateNodes(table, nodes) {
    if (!nodes || !nodes.length) return;
    var body = table.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    nodes.forEach(function (n) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-node", n.node);
      cell(tr, n.node);
      var health = document.createElement("span");
      health.className = "health " + (n.health === "running" ? "ok" : "bad");
      health.textContent = n.health;
      cell(tr, "").appendChild(health);
      cell(tr, n.heartbeatAgeMs < 0 ? "never" : duration(n.heartbeatAgeMs) + " ago");
      cell(tr, n.pid + ", " + (n.version || "-"));
      cell(tr, n.startedAt || "-");
      cell(tr, count(n.connections), "num");
      cell(tr, count(n.messagesIn), "num");
      cell(tr, count(n.messagesOut), "num");
      body.appendChild(tr);
    });
  }

  function apply(data) {
    document.querySelectorAll("[data-stat]").forEach(function (el) {
      var v = lookup(data, el.getAttribute("data-stat"));
      if (v === undefined) return;
      var f = el.getAttribute("data-format");
      if (f === "duration") el.textContent = duration(v);
      else if (f === "bytes") el.textContent = bytes(v);
      else if (f === "age") el.textContent = v < 0 ? "never" : duration(v) + " ago";
      else if (f === "health") {
        el.textContent = v;
        el.classList.toggle("ok", v === "running");
        el.classList.toggle("bad", v !== "running");
      } else if (typeof v === "number") el.textContent = count(v);
      else el.textContent = v === "" ? "-" : v;
    });
    document.querySelectorAll("table[data-platforms]").forEach(function (t) {
      updatePlatforms(t, data[t.getAttribute("data-platforms")]);
    });
    document.querySelectorAll("table[data-nodes]").forEach(function (t) {
      updateNodes(t, data[t.getAttribute("data-nodes")]);
    });
    document.querySelectorAll("svg[data-chart]").forEach(function (svg) {
      updateChart(svg, svg.getAttribute("data-chart") === "hours" ? data.perHour : data.perDay);
    });
  }

  function live(el) {
    var url = el.getAttribute("data-live");
    var every = Math.max(1000, Number(el.getAttribute("data-refresh-ms")) || 5000);
    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
        var type = res.headers.get("Content-Type") || "";
        if (res.status === 401 || res.redirected || type.indexOf("application/json") !== 0) {
          location.reload(); /* the session ended: the page itself goes to the login page */
          return null;
        }
        return res.ok ? res.json() : null;
      }).then(function (data) {
        if (data) { apply(data); document.body.setAttribute("data-refreshed", data.generatedAt); }
      }).catch(function () { /* offline for a moment: try again next time */ })
        .then(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  }

  document.querySelectorAll("[data-launch]").forEach(countdown);
  document.querySelectorAll("[data-live]").forEach(live);
})();
