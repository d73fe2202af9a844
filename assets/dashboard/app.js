// Rally's dashboard: reads GET /v1/report (the selected range and the one of the same
// length just before it) and the member endpoints, and draws them. Plain script, no
// build step. Every piece of data reaches the page through textContent, never
// innerHTML: member ids and rule ids are user input.
//
// Every figure carries a data-kpi / data-* attribute so tests can read it from the DOM.
(function () {
  "use strict";

  var DAY = 86400000;

  // ---- dates --------------------------------------------------------------------

  function iso(date) {
    return date.toISOString().slice(0, 10);
  }

  function parseDay(text) {
    var p = text.split("-");
    return new Date(Date.UTC(+p[0], +p[1] - 1, +p[2]));
  }

  // The range the page shows: `#from=..&to=..&by=..` when given (a link to a fixed
  // period), else the last N days up to `today`: the community's day by Rally's clock
  // (in `settings.timezone`), not the browser's.
  function selectedRange(today) {
    var hash = new URLSearchParams(location.hash.slice(1));
    var by = hash.get("by") || document.getElementById("by").value;
    if (hash.get("from") && hash.get("to")) {
      return { from: hash.get("from"), to: hash.get("to"), by: by };
    }
    var days = +document.getElementById("days").value;
    var to = parseDay(today);
    return { from: iso(new Date(to - (days - 1) * DAY)), to: iso(to), by: by };
  }

  // Today as the daemon counts it: the last day of its default report (the 30 days
  // ending at Rally's clock, in the community's zone). Asked once per load, by month
  // so the answer stays small.
  function communityToday() {
    var hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("from") && hash.get("to")) return Promise.resolve(hash.get("to"));
    return getJson("/v1/report?by=month").then(function (report) {
      return report.to;
    });
  }

  // The range of the same length that ends the day before `range` starts.
  function previousRange(range) {
    var from = parseDay(range.from);
    var days = Math.round((parseDay(range.to) - from) / DAY) + 1;
    return {
      from: iso(new Date(from - days * DAY)),
      to: iso(new Date(from - DAY)),
      by: range.by,
    };
  }

  // A period label as the report writes it ("2026-11-01", "2026-11", "2026-W44") to
  // seconds since the epoch, for the charts' x axis.
  function periodSeconds(period) {
    var week = /^(\d{4})-W(\d{2})$/.exec(period);
    if (week) {
      var jan4 = Date.UTC(+week[1], 0, 4);
      var dow = (new Date(jan4).getUTCDay() + 6) % 7;
      return (jan4 - dow * DAY + (+week[2] - 1) * 7 * DAY) / 1000;
    }
    var month = /^(\d{4})-(\d{2})$/.exec(period);
    if (month) return Date.UTC(+month[1], +month[2] - 1, 1) / 1000;
    return parseDay(period) / 1000;
  }

  // ---- DOM helpers --------------------------------------------------------------

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        node.setAttribute(name, attrs[name]);
      });
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function row(tbody, cells) {
    var tr = el("tr");
    cells.forEach(function (cell) {
      tr.appendChild(cell instanceof Node ? cell : el("td", cell));
    });
    tbody.appendChild(tr);
    return tr;
  }

  function num(value) {
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  }

  function percent(rate) {
    return (rate * 100).toFixed(1) + "%";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 120) return seconds + " s";
    if (seconds < 7200) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  // ---- KPIs ---------------------------------------------------------------------

  // name, label, how to read it from a report's totals.
  var KPIS = [
    ["active", "Active members", function (t) { return t.members.active; }],
    ["new", "New members", function (t) { return t.members.new; }],
    ["returned", "Returned", function (t) { return t.members.returned; }],
    ["points_issued", "Points issued", function (t) { return t.points.issued; }],
    ["gmv", "GMV", function (t) { return Number(t.commerce.gmv); }],
    ["messages_sent", "Messages sent", function (t) { return t.messages.sent; }],
  ];

  function renderKpis(report, previous) {
    var box = clear(document.getElementById("kpis"));
    KPIS.forEach(function (kpi) {
      var name = kpi[0];
      var now = kpi[2](report.totals);
      var card = el("div", null, { class: "kpi" });
      card.appendChild(el("h3", kpi[1]));
      card.appendChild(el("p", num(now), { class: "value", "data-kpi": name, "data-value": String(now) }));
      if (previous) {
        var before = kpi[2](previous.totals);
        var delta = now - before;
        var text = (delta > 0 ? "+" : "") + num(delta);
        if (before !== 0) text += " (" + (delta > 0 ? "+" : "") + percent(delta / before) + ")";
        var cls = delta > 0 ? "delta up" : delta < 0 ? "delta down" : "delta";
        card.appendChild(el("p", text + " vs previous", {
          class: cls,
          "data-kpi-delta": name,
          "data-value": String(delta),
        }));
        card.appendChild(el("p", "previous: " + num(before), {
          class: "previous",
          "data-kpi-previous": name,
          "data-value": String(before),
        }));
      }
      box.appendChild(card);
    });
  }

  // ---- charts (uPlot) -----------------------------------------------------------

  var COLORS = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#dc2626", "#0891b2"];

  var CHARTS = [
    ["members", [
      ["active", function (p) { return p.members.active; }],
      ["new", function (p) { return p.members.new; }],
      ["returned", function (p) { return p.members.returned; }],
      ["silent 7d", function (p) { return p.silent["7d"]; }],
    ]],
    ["points", [
      ["issued", function (p) { return p.points.issued; }],
      ["redeemed", function (p) { return p.points.redeemed; }],
      ["expired", function (p) { return p.points.expired; }],
    ]],
    ["messages", [
      ["sent", function (p) { return p.messages.sent; }],
      ["failed", function (p) { return p.messages.failed; }],
      ["suppressed", function (p) { return p.messages.suppressed; }],
      ["capped", function (p) { return p.messages.capped; }],
      ["queued", function (p) { return p.messages.queued; }],
    ]],
  ];

  var charts = {};

  function renderCharts(report) {
    var xs = report.periods.map(function (p) { return periodSeconds(p.period); });
    CHARTS.forEach(function (chart) {
      var name = chart[0];
      var box = document.getElementById("chart-" + name);
      if (charts[name]) charts[name].destroy();
      clear(box);
      var data = [xs].concat(chart[1].map(function (s) {
        return report.periods.map(s[1]);
      }));
      var series = [{}].concat(chart[1].map(function (s, i) {
        return { label: s[0], stroke: COLORS[i], width: 2, points: { show: xs.length <= 62 } };
      }));
      var opts = {
        width: Math.max(300, box.clientWidth || 600),
        height: 220,
        series: series,
        axes: [{}, { size: 60 }],
        scales: { x: { time: true } },
        legend: { live: true },
      };
      charts[name] = new uPlot(opts, data, box);
      box.setAttribute("data-chart", name);
      box.setAttribute("data-points", String(xs.length));
      // Each series' total over the range, beside the legend: a figure to check.
      var sums = el("p", null, { class: "sums" });
      chart[1].forEach(function (s, i) {
        var total = data[i + 1].reduce(function (a, b) { return a + b; }, 0);
        sums.appendChild(el("span", s[0] + " " + num(total), {
          "data-series-total": name + ":" + s[0],
          "data-value": String(total),
        }));
      });
      box.appendChild(sums);
    });
  }

  // ---- tables -------------------------------------------------------------------

  function renderFunnel(report) {
    var tbody = clear(document.querySelector("#funnel tbody"));
    (report.reengagement || []).forEach(function (step) {
      var bar = el("td", null, { class: "bar" });
      var fill = el("span", percent(step.rate), { "data-funnel-rate": step.rule });
      fill.style.width = Math.min(100, step.rate * 100).toFixed(1) + "%";
      bar.appendChild(fill);
      row(tbody, [
        step.rule,
        step.template,
        el("td", num(step.sent), { "data-funnel-sent": step.rule }),
        el("td", num(step.returned), { "data-funnel-returned": step.rule }),
        bar,
      ]);
    });
    if (!(report.reengagement || []).length) row(tbody, [el("td", "no re-engagement rules", { colspan: "5" })]);
  }

  function renderTickets(report) {
    var t = report.tickets || {};
    var dl = clear(document.getElementById("tickets"));
    function item(label, value, key) {
      dl.appendChild(el("dt", label));
      dl.appendChild(el("dd", value, { "data-ticket": key }));
    }
    item("Opened", num(t.opened), "opened");
    item("Acknowledged", num(t.acknowledged), "acknowledged");
    item("Resolved", num(t.resolved), "resolved");
    item("Time to acknowledge, median", duration(t.ack_p50_seconds), "ack_p50");
    item("Time to acknowledge, 90th percentile", duration(t.ack_p90_seconds), "ack_p90");
    Object.keys(t.breaches || {}).sort().forEach(function (level) {
      item("SLA breaches at level " + level, num(t.breaches[level]), "breaches:" + level);
    });
  }

  function renderTiers(report) {
    var tbody = clear(document.querySelector("#tiers tbody"));
    Object.keys(report.tiers || {}).forEach(function (tier) {
      row(tbody, [tier, el("td", num(report.tiers[tier]), { "data-tier": tier })]);
    });
  }

  function renderCampaigns(report) {
    var box = clear(document.getElementById("campaigns"));
    if (!(report.campaigns || []).length) box.appendChild(el("p", "no campaigns"));
    var now = Date.now();
    (report.campaigns || []).forEach(function (campaign) {
      var card = el("article", null, { class: "campaign", "data-campaign": campaign.id });
      card.appendChild(el("h3", campaign.id));
      // The timeline: one segment per phase, as wide as the phase is long (an open
      // phase runs to now).
      var spans = campaign.phases.map(function (phase) {
        var from = Date.parse(phase.from);
        var to = phase.to ? Date.parse(phase.to) : Math.max(now, from);
        return Math.max(1, to - from);
      });
      var whole = spans.reduce(function (a, b) { return a + b; }, 0);
      var line = el("div", null, { class: "timeline" });
      campaign.phases.forEach(function (phase, i) {
        var seg = el("span", phase.name, { class: "phase phase-" + (i % 6) });
        seg.style.flexGrow = String(spans[i] / whole);
        seg.title = phase.from + " → " + (phase.to || "open");
        line.appendChild(seg);
      });
      card.appendChild(line);
      var table = el("table");
      var head = el("thead");
      row(head, ["Phase", "From", "To", "Participants", "Points", "GMV", "Budget used"].map(function (h) { return el("th", h); }));
      table.appendChild(head);
      var tbody = el("tbody");
      campaign.phases.forEach(function (phase) {
        var key = campaign.id + ":" + phase.name;
        row(tbody, [
          phase.name,
          phase.from.slice(0, 16).replace("T", " "),
          phase.to ? phase.to.slice(0, 16).replace("T", " ") : "open",
          el("td", num(phase.participants), { "data-phase-participants": key }),
          el("td", num(phase.points), { "data-phase-points": key }),
          el("td", phase.gmv, { "data-phase-gmv": key }),
          el("td", num(phase.budget_used), { "data-phase-budget": key }),
        ]);
      });
      table.appendChild(tbody);
      card.appendChild(table);
      box.appendChild(card);
    });
  }

  function renderCohorts(report) {
    var table = document.getElementById("cohorts");
    var width = (report.cohorts || []).reduce(function (w, c) { return Math.max(w, c.active.length); }, 0);
    var head = clear(table.querySelector("thead"));
    var cells = ["Week", "Joined"];
    for (var i = 0; i < width; i++) cells.push("+" + i + "w");
    row(head, cells.map(function (h) { return el("th", h); }));
    var tbody = clear(table.querySelector("tbody"));
    (report.cohorts || []).forEach(function (cohort) {
      var tr = row(tbody, [cohort.week, el("td", num(cohort.size), { "data-cohort-size": cohort.week })]);
      cohort.active.forEach(function (active, i) {
        var share = cohort.size ? active / cohort.size : 0;
        var td = el("td", percent(share), {
          class: "cell",
          "data-cohort": cohort.week + ":" + i,
          "data-value": String(active),
          title: active + " of " + cohort.size,
        });
        td.style.backgroundColor = "rgba(37, 99, 235, " + (0.08 + 0.8 * share).toFixed(3) + ")";
        if (share > 0.55) td.classList.add("dark");
        tr.appendChild(td);
      });
    });
  }

  function renderRules(report) {
    var byFirings = (report.rules || []).slice().sort(function (a, b) {
      return b.firings - a.firings || (a.id < b.id ? -1 : 1);
    }).slice(0, 10);
    var tbody = clear(document.querySelector("#rules-firings tbody"));
    byFirings.forEach(function (rule) {
      row(tbody, [rule.id, el("td", num(rule.firings), { "data-rule-firings": rule.id }), num(rule.points)]);
    });
    var failing = (report.rules || []).filter(function (r) { return r.failures > 0; }).sort(function (a, b) {
      return b.failures - a.failures || (a.id < b.id ? -1 : 1);
    }).slice(0, 10);
    tbody = clear(document.querySelector("#rules-failures tbody"));
    failing.forEach(function (rule) {
      row(tbody, [rule.id, el("td", num(rule.failures), { "data-rule-failures": rule.id }), num(rule.firings)]);
    });
    if (!failing.length) row(tbody, [el("td", "no failures", { colspan: "3" })]);
  }

  // Draws a whole report (and the previous period's, for the KPI deltas). Exposed so
  // a test can time the render of a given report.
  function render(report, previous) {
    document.getElementById("period").textContent =
      report.from + " – " + report.to + " by " + report.by + " (" + report.timezone + ")";
    renderKpis(report, previous);
    renderCharts(report);
    renderFunnel(report);
    renderTickets(report);
    renderTiers(report);
    renderCampaigns(report);
    renderCohorts(report);
    renderRules(report);
    document.getElementById("dashboard").setAttribute("data-state", "ready");
    document.getElementById("status").textContent = "";
  }

  // ---- the API ------------------------------------------------------------------

  function getJson(path) {
    return fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        // The session ended (logout elsewhere, restart): `/` shows the login form.
        if (response.status === 401) {
          location.assign("/");
          throw new Error("not logged in");
        }
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || response.statusText);
          return body;
        });
      });
  }

  function reportPath(range) {
    return "/v1/report?from=" + range.from + "&to=" + range.to + "&by=" + range.by;
  }

  function load() {
    var main = document.getElementById("dashboard");
    var status = document.getElementById("status");
    main.setAttribute("data-state", "loading");
    status.textContent = "loading…";
    return communityToday()
      .then(function (today) {
        var range = selectedRange(today);
        return Promise.all([getJson(reportPath(range)), getJson(reportPath(previousRange(range)))]);
      })
      .then(function (both) {
        var started = performance.now();
        render(both[0], both[1]);
        var took = performance.now() - started;
        main.setAttribute("data-render-ms", took.toFixed(1));
      })
      .catch(function (e) {
        main.setAttribute("data-state", "error");
        status.textContent = "Could not load the report: " + e.message;
      });
  }

  // ---- member lookup ------------------------------------------------------------

  function lookup(id) {
    var box = clear(document.getElementById("member"));
    var error = document.getElementById("member-error");
    error.textContent = "";
    var base = "/v1/members/" + encodeURIComponent(id);
    return Promise.all([getJson(base), getJson(base + "/ledger"), getJson(base + "/history?limit=50")])
      .then(function (all) {
        var state = all[0];
        var card = el("article", null, { "data-member": id });
        card.appendChild(el("h3", "State"));
        var dl = el("dl");
        ["points", "points_lifetime", "tier", "tags", "badges", "joined_at", "last_active"].forEach(function (key) {
          if (state[key] === undefined) return;
          dl.appendChild(el("dt", key));
          var value = Array.isArray(state[key]) ? state[key].join(", ") : state[key];
          dl.appendChild(el("dd", value, { "data-member-field": key }));
        });
        card.appendChild(dl);
        var raw = el("details");
        raw.appendChild(el("summary", "everything"));
        raw.appendChild(el("pre", JSON.stringify(state, null, 2)));
        card.appendChild(raw);
        box.appendChild(card);

        var ledger = el("article");
        ledger.appendChild(el("h3", "Ledger"));
        var table = el("table", null, { id: "member-ledger" });
        var head = el("thead");
        row(head, ["At", "Points", "Rule", "Reason"].map(function (h) { return el("th", h); }));
        table.appendChild(head);
        var tbody = el("tbody");
        all[1].ledger.slice(-50).forEach(function (entry) {
          row(tbody, [
            String(entry.at || "").slice(0, 16).replace("T", " "),
            el("td", num(entry.amount), { "data-ledger-amount": String(entry.amount) }),
            entry.rule || "",
            (entry.reason || "") + (entry.clipped_by ? " (clipped by " + entry.clipped_by + ")" : ""),
          ]);
        });
        table.appendChild(tbody);
        ledger.appendChild(table);
        box.appendChild(ledger);

        var history = el("article");
        history.appendChild(el("h3", "History"));
        var list = el("ol", null, { id: "member-history" });
        (all[2].firings || []).forEach(function (f) {
          list.appendChild(el("li", f.at.slice(0, 16).replace("T", " ") + " fired " + f.rule +
            " (" + f.trigger + (f.event ? " " + f.event : "") + ")", { "data-history": "firing" }));
        });
        (all[2].messages || []).forEach(function (m) {
          list.appendChild(el("li", String(m.queued_at || m.at).slice(0, 16).replace("T", " ") +
            " message " + m.template + " on " + m.channel + ": " + m.status, { "data-history": "message" }));
        });
        history.appendChild(list);
        box.appendChild(history);
      })
      .catch(function (e) {
        error.textContent = e.message;
      });
  }

  // ---- wiring -------------------------------------------------------------------

  function start() {
    document.getElementById("days").addEventListener("change", function () {
      if (location.hash) history.replaceState(null, "", "/");
      load();
    });
    document.getElementById("by").addEventListener("change", function () {
      var hash = new URLSearchParams(location.hash.slice(1));
      if (hash.get("by")) {
        hash.set("by", document.getElementById("by").value);
        history.replaceState(null, "", "#" + hash.toString());
      }
      load();
    });
    window.addEventListener("hashchange", load);
    document.getElementById("member-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var id = document.getElementById("member-id").value.trim();
      if (id) lookup(id);
    });
    load();
  }

  window.rallyDashboard = { render: render, load: load, lookup: lookup, charts: charts };
  start();
})();
