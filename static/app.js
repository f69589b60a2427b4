// jobcast's page: start a deep-research job, watch it live (SSE or WebSocket), browse recent jobs.
// Plain JavaScript, no build step, nothing from another origin.
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["completed", "failed", "cancelled"]);
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10000;
const PAGE_SIZE = 20;
/** How long typing in the dashboard's search box pauses before it lists again. */
const SEARCH_DEBOUNCE_MS = 250;
// The control token a job's creation answered, kept per job so that any tab (or a reload) of
// this browser can cancel the job it started.
const controlTokenKey = (jobId) => `jobcast:control:${jobId}`;

const EXAMPLES = {
  cola: ["Diet cola", "carbonated water\ncaramel colour (E150d)\nphosphoric acid\naspartame\nacesulfame K\ncaffeine"],
  ham: ["Cured ham", "pork\nwater\nsalt\ndextrose\nsodium nitrite\nsodium ascorbate"],
  sunscreen: ["Sunscreen SPF 50", "aqua, octocrylene, homosalate, glycerin, titanium dioxide, phenoxyethanol, parfum"],
  empty: ["Nothing at all", ""],
};

// ---------------------------------------------------------------------------------------------
// One stream per job per browser. The tab holding a Web Lock named after the stream opens it and
// passes every message to the other tabs over a BroadcastChannel; when that tab closes, another
// one takes the lock and carries on from the last seq it saw. HTTP/1.1 browsers allow only six
// connections per origin, so tabs must not each hold their own.
// ---------------------------------------------------------------------------------------------
function shareAcrossTabs(name, open, onMessage) {
  const abort = new AbortController();
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(name) : null;
  const latest = new Map(); // the leader's last message of each type, for tabs that join later
  let leading = false;
  const publish = (message) => {
    latest.set(message.type, message);
    onMessage(message);
    if (channel) channel.postMessage(message);
  };
  if (channel) {
    channel.onmessage = (event) => {
      if (event.data.type === "hello") {
        if (leading) latest.forEach((message) => channel.postMessage(message));
      } else {
        onMessage(event.data);
      }
    };
    channel.postMessage({ type: "hello" });
  }
  const lead = () => new Promise((resolve) => {
    leading = true;
    const close = open(publish, resolve);
    abort.signal.addEventListener("abort", () => { close(); resolve(); });
  }).finally(() => { leading = false; });
  if (navigator.locks && channel) {
    navigator.locks.request(name, { signal: abort.signal }, lead).catch(() => {});
  } else {
    lead();
  }
  return () => { abort.abort(); if (channel) channel.close(); };
}

// ---------------------------------------------------------------------------------------------
// A job's live feed over SSE or WebSocket, resuming from the last seq after any drop.
// ---------------------------------------------------------------------------------------------
class JobFeed {
  constructor(jobId, transport, lastSeq, publish, done) {
    Object.assign(this, { jobId, transport, lastSeq, publish, done });
    this.final = false;
    this.stopped = false;
    this.retryMs = RECONNECT_MIN_MS;
  }

  start() {
    if (this.transport === "ws") this.openSocket(); else this.openEvents();
    return () => this.stop();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    if (this.socket) this.socket.close(1000);
  }

  state(state) {
    this.publish({ type: "state", jobId: this.jobId, state });
  }

  receive(job, seq) {
    if (seq <= this.lastSeq && !FINAL.has(job.status)) return;
    this.lastSeq = Math.max(seq, this.lastSeq);
    this.retryMs = RECONNECT_MIN_MS;
    this.publish({ type: "job", jobId: this.jobId, job });
    if (FINAL.has(job.status)) {
      this.final = true;
      this.stop();
      this.state("finished");
      this.done();
    }
  }

  openEvents() {
    const resume = this.lastSeq > 0 ? `?last_event_id=${this.lastSeq}` : "";
    const source = new EventSource(`/api/v4/job/${this.jobId}/events${resume}`);
    this.source = source;
    this.state(this.lastSeq > 0 ? "reconnecting" : "connecting");
    source.onopen = () => this.state("live");
    for (const kind of ["snapshot", "progress", "completed", "failed", "cancelled"]) {
      source.addEventListener(kind, (event) => this.receive(JSON.parse(event.data), Number(event.lastEventId)));
    }
    source.onerror = () => {
      if (this.final || this.stopped) return;
      if (source.readyState === EventSource.CLOSED) {
        // 204 (we hold the final state), 404, or a proxy's error page: ask once, then retry.
        source.close();
        this.recoverByFetch();
      } else {
        this.state("reconnecting"); // the browser reconnects by itself, sending Last-Event-ID
      }
    };
  }

  openSocket() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const resume = this.lastSeq > 0 ? `?last_seq=${this.lastSeq}` : "";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v4/job/${this.jobId}/ws${resume}`);
    this.socket = socket;
    this.state(this.lastSeq > 0 ? "reconnecting" : "connecting");
    socket.onopen = () => this.state("live");
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      this.receive(message.job, message.seq);
    };
    socket.onclose = (event) => {
      if (this.final || this.stopped) return;
      if (event.code === 1000) return this.recoverByFetch(); // already final, or job gone
      this.state("reconnecting");
      this.retryLater(() => this.openSocket());
    };
  }

  async recoverByFetch() {
    let waiting = "reconnecting";
    try {
      const response = await fetch(`/api/v4/job/${this.jobId}`);
      // 503: the job store is away (a Redis outage); the job may well exist, so keep trying.
      if (response.status === 503) waiting = "store unavailable";
      if (response.status === 404) {
        this.publish({ type: "missing", jobId: this.jobId });
        this.state("finished");
        return this.done();
      }
      if (response.ok) {
        const job = await response.json();
        this.receive(job, job.seq);
      }
    } catch (_) { /* the server is away; try again below */ }
    if (!this.final && !this.stopped) {
      this.state(waiting);
      this.retryLater(() => this.transport === "ws" ? this.openSocket() : this.openEvents());
    }
  }

  retryLater(reopen) {
    const wait = this.retryMs + Math.random() * this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    this.timer = setTimeout(() => { if (!this.stopped) reopen(); }, wait);
  }
}

// ---------------------------------------------------------------------------------------------
// Watching one job on the page.
// ---------------------------------------------------------------------------------------------
const watching = { jobId: null, seq: 0, stop: null };

function transport() {
  return document.querySelector('input[name="transport"]:checked').value;
}

function watch(jobId) {
  if (watching.stop) watching.stop();
  const fresh = watching.jobId !== jobId;
  watching.jobId = jobId;
  if (fresh) {
    watching.seq = 0;
    $("report").replaceChildren();
    $("webhooks").hidden = true;
    $("webhook-list").replaceChildren();
  }
  $("watch").hidden = false;
  $("job-id").textContent = jobId;
  $("share-link").href = `/?job=${jobId}`;
  const name = `jobcast:job:${jobId}`;
  watching.stop = shareAcrossTabs(name, (publish, done) => {
    return new JobFeed(jobId, transport(), watching.seq, publish, done).start();
  }, (message) => {
    if (message.jobId !== watching.jobId) return;
    if (message.type === "state") setConnection(message.state);
    if (message.type === "job") showJob(message.job);
    if (message.type === "missing") showMissing();
  });
}

function setConnection(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = state;
}

function showJob(job) {
  if (job.seq < watching.seq) return;
  watching.seq = job.seq;
  $("seq").textContent = job.seq;
  $("progress-fill").style.width = `${job.progress}%`;
  $("progressbar").setAttribute("aria-valuenow", String(job.progress));
  $("percent").textContent = `${job.progress}%`;
  $("status").textContent = job.status;
  $("status").dataset.status = job.status;
  $("step").textContent = job.current_step;
  const title = job.input && job.input.product_name ? job.input.product_name : job.kind;
  $("watch-title").textContent = title;
  $("cancel-button").hidden = FINAL.has(job.status) || !controlToken(job.job_id);
  if (FINAL.has(job.status)) forgetControlToken(job.job_id);
  if (job.status === "failed") $("report").replaceChildren(paragraph(`This job failed: ${job.error}`, "field-error"));
  if (job.status === "cancelled") $("report").replaceChildren(paragraph(job.error || "Cancelled", "hint"));
  if (job.status === "completed" && job.result) $("report").replaceChildren(...renderReport(job.result));
  if (FINAL.has(job.status)) showWebhooks(job.job_id);
}

// ---------------------------------------------------------------------------------------------
// The watch view's webhooks: every delivery of the job's end and its attempts (admins only).
// ---------------------------------------------------------------------------------------------
/** How often the view reads the deliveries again while one is still pending. */
const WEBHOOK_REFRESH_MS = 1000;

async function showWebhooks(jobId) {
  if (watching.jobId !== jobId) return;
  const response = await fetch(`/api/v4/job/${jobId}/webhooks`).catch(() => null);
  if (!response || !response.ok) return; // not an admin, or the server is away: nothing to show
  const { deliveries } = await response.json();
  if (watching.jobId !== jobId) return;
  $("webhooks").hidden = deliveries.length === 0;
  $("webhook-list").replaceChildren(...deliveries.map(webhookRow));
  if (deliveries.some((delivery) => delivery.status === "pending")) {
    setTimeout(() => showWebhooks(jobId), WEBHOOK_REFRESH_MS);
  }
}

function webhookRow(delivery) {
  const row = element("li");
  row.dataset.deliveryId = delivery.id;
  const status = element("span", delivery.status, "delivery-status");
  status.dataset.status = delivery.status;
  row.append(element("code", delivery.url), " ", status);
  const attempts = element("ol", undefined, "attempts");
  for (const attempt of delivery.attempts) {
    const answered = attempt.status_code === null ? "no answer" : String(attempt.status_code);
    const text = `${answered} · ${attempt.latency_ms} ms${attempt.error ? ` · ${attempt.error}` : ""}`;
    attempts.append(element("li", text));
  }
  row.append(attempts);
  if (delivery.next_attempt_at) {
    row.append(paragraph(`Next attempt ${new Date(delivery.next_attempt_at).toLocaleTimeString()}`, "hint"));
  }
  return row;
}

function controlToken(jobId) {
  try { return localStorage.getItem(controlTokenKey(jobId)); } catch (_) { return null; }
}

function forgetControlToken(jobId) {
  try { localStorage.removeItem(controlTokenKey(jobId)); } catch (_) {}
}

async function cancelWatched() {
  const jobId = watching.jobId;
  const button = $("cancel-button");
  const error = $("cancel-error");
  button.disabled = true;
  error.hidden = true;
  try {
    const response = await fetch(`/api/v4/job/${jobId}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${controlToken(jobId)}` },
      body: JSON.stringify({ reason: "stopped from the page" }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `Request failed (${response.status})`);
    showJob(body); // the stream brings the same state; this shows it at once
  } catch (failure) {
    error.textContent = `Could not cancel: ${failure.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function showMissing() {
  $("status").textContent = "not found";
  $("step").textContent = "This job does not exist or has expired.";
}

function renderReport(report) {
  const risk = report.overall_risk || { level: "unknown", derivation: "" };
  const heading = element("h3", "Overall risk ");
  const badge = element("span", risk.level, "risk");
  badge.dataset.level = risk.level;
  heading.append(badge);
  const parts = [heading, paragraph(risk.derivation, "hint")];
  if (report.findings && report.findings.length) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const title of ["Ingredient", "Matched", "IARC group", "Concern", "Note", "Source"]) {
      head.append(element("th", title));
    }
    const body = table.createTBody();
    for (const finding of report.findings) {
      const row = body.insertRow();
      const cells = [finding.ingredient, finding.matched, finding.iarc_group || "—", finding.concern, finding.note, finding.source];
      for (const value of cells) row.insertCell().textContent = value;
    }
    const wrap = element("div", "", "table-wrap");
    wrap.append(table);
    parts.push(wrap);
  }
  const unmatched = report.unmatched || [];
  parts.push(paragraph(unmatched.length
    ? `Not in the table (${unmatched.length}): ${unmatched.join(", ")}`
    : "Every ingredient was found in the table.", "hint"));
  return parts;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function paragraph(text, className) {
  return element("p", text, className);
}

// ---------------------------------------------------------------------------------------------
// Starting a job.
// ---------------------------------------------------------------------------------------------
function showFieldError(id, message) {
  const error = $(`${id}-error`);
  error.textContent = message || "";
  error.hidden = !message;
  const field = $(id);
  if (field) field.setAttribute("aria-invalid", message ? "true" : "false");
}

async function startJob(event) {
  event.preventDefault();
  for (const id of ["product", "ingredients", "form"]) showFieldError(id, "");
  const ingredients = $("ingredients").value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  const button = $("start-button");
  button.disabled = true;
  try {
    const response = await fetch("/api/v4/deep-research", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ product_name: $("product").value, ingredients }),
    });
    const body = await response.json();
    if (!response.ok) {
      const detail = String(body.detail || `Request failed (${response.status})`);
      const field = detail.includes("product_name") ? "product" : detail.includes("ingredient") ? "ingredients" : "form";
      showFieldError(field, detail);
      if (field !== "form") $(field).focus();
      return;
    }
    try { localStorage.setItem(controlTokenKey(body.job_id), body.control_token); } catch (_) {}
    history.pushState(null, "", `/?job=${body.job_id}`);
    watch(body.job_id);
    $("watch").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (error) {
    showFieldError("form", `Could not reach the server: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function fillExample(event) {
  const example = EXAMPLES[event.target.dataset.example];
  if (!example) return;
  $("product").value = example[0];
  $("ingredients").value = example[1];
}

// ---------------------------------------------------------------------------------------------
// The dashboard: recent jobs, live.
// ---------------------------------------------------------------------------------------------
const dashboard = { cursor: null, rows: new Map(), stopFeed: null };

async function loadJobs(reset) {
  if (reset) {
    dashboard.cursor = null;
    dashboard.rows.clear();
    $("job-list").replaceChildren();
  }
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const status = $("status-filter").value;
  if (status) params.set("status", status);
  // Sent as typed: a trailing space means the last word is whole (see the README's Search).
  const search = $("search-filter").value;
  if (search.trim()) params.set("q", search);
  if (dashboard.cursor) params.set("cursor", dashboard.cursor);
  const response = await fetch(`/api/v4/jobs?${params}`);
  if (search !== $("search-filter").value) return; // typed on meanwhile: a newer list follows
  $("sign-in").hidden = response.status !== 401;
  $("dashboard-note").hidden = response.status !== 403 && response.status !== 422;
  if (response.status === 403 || response.status === 422) {
    $("dashboard-note").textContent = (await response.json()).detail;
  }
  if (!response.ok) return;
  const page = await response.json();
  for (const job of page.jobs) upsertRow(job, false);
  dashboard.cursor = page.next_cursor;
  $("load-more").hidden = !page.next_cursor;
  if (!dashboard.stopFeed) startAllJobsFeed();
}

function startAllJobsFeed() {
  dashboard.stopFeed = shareAcrossTabs("jobcast:all-jobs", (publish) => {
    const source = new EventSource("/api/v4/jobs/events");
    // Changes made before the stream was (re)opened are not sent: list again to catch up.
    source.onopen = () => publish({ type: "opened" });
    for (const kind of ["created", "progress", "completed", "failed", "cancelled"]) {
      source.addEventListener(kind, (event) => publish({ type: "job", kind, job: JSON.parse(event.data) }));
    }
    return () => source.close();
  }, (message) => {
    if (message.type === "opened") return loadJobs(true);
    if (message.type !== "job") return;
    const filter = $("status-filter").value;
    const known = dashboard.rows.has(message.job.job_id);
    // While searching, only the server knows which new jobs match: new rows wait for a list.
    const searching = $("search-filter").value.trim() !== "";
    const wanted = !searching && (!filter || filter === message.job.status);
    if (known || (message.kind === "created" && wanted)) {
      upsertRow(message.job, !known);
    }
  });
}

function upsertRow(job, atTop) {
  let row = dashboard.rows.get(job.job_id);
  if (!row) {
    row = document.createElement("li");
    row.dataset.jobId = job.job_id;
    const title = element("span", "", "title");
    const status = element("span", "", "status");
    const bar = element("div", "", "progress small");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.append(element("div", "", "progress-fill"));
    const open = element("button", "Watch");
    open.type = "button";
    open.addEventListener("click", () => {
      history.pushState(null, "", `/?job=${job.job_id}`);
      watch(job.job_id);
      $("watch").scrollIntoView({ behavior: "smooth" });
    });
    row.append(title, status, bar, open);
    dashboard.rows.set(job.job_id, row);
    if (atTop) $("job-list").prepend(row); else $("job-list").append(row);
  }
  const [title, status, bar, open] = row.children;
  const name = job.input && job.input.product_name ? job.input.product_name : job.kind;
  title.textContent = name;
  title.title = `${name} — ${job.job_id}`;
  status.textContent = job.status;
  status.dataset.status = job.status;
  bar.setAttribute("aria-valuenow", String(job.progress));
  bar.setAttribute("aria-label", `${name}: ${job.progress}%`);
  bar.firstChild.style.width = `${job.progress}%`;
  open.setAttribute("aria-label", `Watch ${name}`);
}

async function signIn(event) {
  event.preventDefault();
  const response = await fetch("/api/v4/session", {
    method: "POST",
    headers: { Authorization: `Bearer ${$("admin-token").value}` },
  });
  showFieldError("sign-in", response.ok ? "" : "That token was not accepted.");
  if (response.ok) {
    $("admin-token").value = "";
    loadJobs(true);
    document.dispatchEvent(new Event("jobcast:signed-in")); // the analytics panel reloads
  }
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("start-form").addEventListener("submit", startJob);
  $("cancel-button").addEventListener("click", cancelWatched);
  document.querySelectorAll("[data-example]").forEach((button) => button.addEventListener("click", fillExample));
  const saved = localStorage.getItem("jobcast.transport");
  if (saved) document.querySelector(`input[name="transport"][value="${saved}"]`).checked = true;
  document.querySelectorAll('input[name="transport"]').forEach((radio) => radio.addEventListener("change", () => {
    localStorage.setItem("jobcast.transport", transport());
    if (watching.jobId) watch(watching.jobId); // same job, other transport, resuming from seq
  }));
  $("status-filter").addEventListener("change", () => loadJobs(true));
  let typing = null;
  $("search-filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => loadJobs(true), SEARCH_DEBOUNCE_MS);
  });
  $("load-more").addEventListener("click", () => loadJobs(false));
  $("sign-in").addEventListener("submit", signIn);
  window.addEventListener("popstate", () => {
    const job = new URLSearchParams(location.search).get("job");
    if (job) watch(job);
  });
  const shared = new URLSearchParams(location.search).get("job");
  if (shared) watch(shared);
  loadJobs(true);
});
