// jobcast's Analytics panel: GET /api/v4/stats as figures, percentiles, a chart of jobs per hour
// by status and one of the duration distribution, both hand-drawn inline SVG with a table or text
// alternative, and the top findings. Plain JavaScript, no library, nothing from another origin.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;
  const STATUSES = ["completed", "failed", "cancelled"];
  const CHART = { width: 720, height: 180, left: 34, bottom: 22, top: 8 };
  const byId = (id) => document.getElementById(id);

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
    return `${(ms / 3600000).toFixed(1)} h`;
  }

  function hourLabel(instant, withDay) {
    const date = new Date(instant);
    const time = `${String(date.getUTCHours()).padStart(2, "0")}:00`;
    if (!withDay) return time;
    return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}-${String(date.getUTCDate()).padStart(2, "0")} ${time}`;
  }

  // The frame of a bar chart: its svg, described by `labelledBy` and summarised by `summary`, and
  // the y axis up to `max`.
  function frame(labelledBy, summary, max) {
    const chart = svg("svg", {
      viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "chart-svg", role: "img",
      "aria-labelledby": labelledBy, "aria-description": summary,
    });
    chart.append(svg("title", {}, summary));
    const base = CHART.height - CHART.bottom;
    chart.append(svg("line", { x1: CHART.left, y1: base, x2: CHART.width, y2: base, class: "axis" }));
    chart.append(svg("text", { x: CHART.left - 4, y: CHART.top + 8, class: "tick end" }, String(max)));
    chart.append(svg("text", { x: CHART.left - 4, y: base, class: "tick end" }, "0"));
    return chart;
  }

  // Jobs per hour: the jobs that ended, stacked by status, over an outline of those created.
  function hourChart(hours) {
    const ended = (hour) => STATUSES.reduce((sum, status) => sum + hour[status], 0);
    const max = Math.max(1, ...hours.map((hour) => Math.max(hour.created, ended(hour))));
    const total = hours.reduce((sum, hour) => sum + hour.created, 0);
    const summary = `Jobs per hour over ${hours.length} hours: ${total} created, the busiest hour had ${max}.`;
    const chart = frame("stats-chart-title", summary, max);
    const plot = CHART.width - CHART.left;
    const base = CHART.height - CHART.bottom;
    const scale = (base - CHART.top) / max;
    const step = plot / hours.length;
    const width = Math.max(step * 0.8, 0.5);
    hours.forEach((hour, i) => {
      const x = CHART.left + i * step + (step - width) / 2;
      const group = svg("g", { class: "hour", "data-hour": hour.hour });
      group.append(svg("title", {},
        `${hourLabel(hour.hour, true)} UTC: ${hour.created} created, ${hour.completed} completed, ${hour.failed} failed, ${hour.cancelled} cancelled`));
      if (hour.created > 0) {
        const height = hour.created * scale;
        group.append(svg("rect", { x, y: base - height, width, height, class: "bar-created" }));
      }
      let top = base;
      for (const status of STATUSES) {
        if (hour[status] === 0) continue;
        const height = hour[status] * scale;
        top -= height;
        group.append(svg("rect", { x, y: top, width, height, class: `bar-${status}`, "data-count": hour[status] }));
      }
      chart.append(group);
    });
    const withDay = hours.length > 24;
    chart.append(svg("text", { x: CHART.left, y: CHART.height - 6, class: "tick" }, hourLabel(hours[0].hour, withDay)));
    chart.append(svg("text", { x: CHART.width, y: CHART.height - 6, class: "tick end" },
      `${hourLabel(hours[hours.length - 1].hour, withDay)} UTC`));
    return chart;
  }

  // The duration histogram: every bucket from the shortest to the longest, empty ones included,
  // so the x axis is logarithmic (bucket k ends at 2^(k/8) ms).
  function distributionChart(buckets) {
    if (!buckets.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = "No job finished in this window.";
      return none;
    }
    const index = (bucket) => Math.round(8 * Math.log2(bucket.to_ms));
    const byIndex = new Map(buckets.map((bucket) => [index(bucket), bucket]));
    const first = index(buckets[0]);
    const last = index(buckets[buckets.length - 1]);
    const max = Math.max(...buckets.map((bucket) => bucket.count));
    const summary = `Durations of ${buckets.reduce((sum, b) => sum + b.count, 0)} jobs, from ${formatMs(buckets[0].from_ms)} to ${formatMs(buckets[buckets.length - 1].to_ms)}.`;
    const chart = frame("stats-distribution-title", summary, max);
    const base = CHART.height - CHART.bottom;
    const scale = (base - CHART.top) / max;
    const step = (CHART.width - CHART.left) / (last - first + 1);
    for (let k = first; k <= last; k++) {
      const bucket = byIndex.get(k);
      if (!bucket) continue;
      const height = bucket.count * scale;
      const rect = svg("rect", {
        x: CHART.left + (k - first) * step + step * 0.1, y: base - height,
        width: Math.max(step * 0.8, 0.5), height, class: "bar-duration",
      });
      rect.append(svg("title", {}, `${formatMs(bucket.from_ms)} to ${formatMs(bucket.to_ms)}: ${bucket.count}`));
      chart.append(rect);
    }
    chart.append(svg("text", { x: CHART.left, y: CHART.height - 6, class: "tick" }, formatMs(buckets[0].from_ms)));
    chart.append(svg("text", { x: CHART.width, y: CHART.height - 6, class: "tick end" },
      formatMs(buckets[buckets.length - 1].to_ms)));
    return chart;
  }

  function hourRows(hours) {
    return hours.slice().reverse().filter((hour) => hour.created || STATUSES.some((s) => hour[s])).map((hour) => {
      const row = document.createElement("tr");
      for (const value of [`${hourLabel(hour.hour, true)}`, hour.created, hour.completed, hour.failed, hour.cancelled]) {
        row.insertCell().textContent = value;
      }
      return row;
    });
  }

  function showPercentiles(rowId, distribution) {
    const cells = byId(rowId).querySelectorAll("td");
    [distribution.p50, distribution.p95, distribution.p99].forEach((ms, i) => { cells[i].textContent = formatMs(ms); });
    cells[3].textContent = distribution.count;
  }

  function show(stats) {
    byId("stats-created").textContent = stats.created;
    for (const status of STATUSES) byId(`stats-${status}`).textContent = stats.finished[status];
    byId("stats-success").textContent = stats.success_rate === null ? "–" : `${(stats.success_rate * 100).toFixed(1)}%`;
    showPercentiles("stats-duration", stats.duration_ms);
    showPercentiles("stats-wait", stats.queue_wait_ms);
    byId("stats-chart").replaceChildren(hourChart(stats.per_hour));
    byId("stats-hours").replaceChildren(...hourRows(stats.per_hour));
    byId("stats-distribution").replaceChildren(distributionChart(stats.duration_ms.buckets));
    byId("stats-findings").replaceChildren(...stats.top_findings.map((finding) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "ingredient";
      name.textContent = finding.ingredient;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = finding.count;
      item.append(name, " ", count);
      return item;
    }));
    byId("stats-no-findings").hidden = stats.top_findings.length > 0;
  }

  async function loadStats() {
    const note = byId("stats-note");
    let response;
    try {
      response = await fetch(`/api/v4/stats?window=${encodeURIComponent(byId("stats-window").value)}`);
    } catch (_) {
      return; // the server is away: keep what is shown, try again on the next refresh
    }
    if (!response.ok) {
      byId("stats-body").hidden = true;
      note.hidden = false;
      const body = await response.json().catch(() => ({}));
      note.textContent = response.status === 401
        ? "Sign in above (the admin token) to see the analytics."
        : body.detail || `The analytics are unavailable (${response.status}).`;
      return;
    }
    show(await response.json());
    note.hidden = true;
    byId("stats-body").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("stats-window").addEventListener("change", loadStats);
    document.addEventListener("jobcast:signed-in", loadStats);
    setInterval(() => { if (document.visibilityState === "visible") loadStats(); }, REFRESH_MS);
    loadStats();
  });
})();
