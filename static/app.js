// Starts a deep-research job and follows it by polling with ETags (a 304 costs nothing).
"use strict";

const POLL_MS = 500;
const $ = (id) => document.getElementById(id);

document.addEventListener("DOMContentLoaded", () => {
  $("start").addEventListener("submit", startJob);
  const shared = new URLSearchParams(location.search).get("job");
  if (shared) watch(shared);
});

async function startJob(event) {
  event.preventDefault();
  const body = {
    product_name: $("product").value,
    ingredients: $("ingredients").value,
  };
  const response = await fetch("/api/v4/deep-research", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const job = await response.json();
  if (!response.ok) {
    $("form-error").textContent = job.detail;
    $("form-error").hidden = false;
    return;
  }
  $("form-error").hidden = true;
  history.replaceState(null, "", `?job=${job.job_id}`);
  watch(job.job_id);
}

async function watch(jobId) {
  $("watch").hidden = false;
  $("job-id").textContent = jobId;
  let etag = null;
  for (;;) {
    const headers = etag ? { "If-None-Match": etag } : {};
    const response = await fetch(`/api/v4/job/${jobId}`, { headers });
    if (response.status === 200) {
      etag = response.headers.get("ETag");
      const job = await response.json();
      show(job);
      if (job.status === "completed" || job.status === "failed") return;
    } else if (response.status !== 304) {
      $("status").textContent = (await response.json()).detail;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function show(job) {
  $("bar-fill").style.width = `${job.progress}%`;
  document.querySelector(".bar").setAttribute("aria-valuenow", job.progress);
  $("percent").textContent = `${job.progress}%`;
  $("step").textContent = job.current_step;
  $("status").textContent = job.status;
  if (job.status === "failed") $("report").replaceChildren(paragraph(`Failed: ${job.error}`, "error"));
  if (job.status === "completed") $("report").replaceChildren(...renderReport(job.result));
}

function renderReport(report) {
  const summary = paragraph(`Overall risk: ${report.overall_risk.level}. ${report.overall_risk.derivation}`);
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const title of ["Ingredient", "Matched", "IARC group", "Concern", "Note"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.appendChild(th);
  }
  const rows = table.createTBody();
  for (const finding of report.findings) {
    const row = rows.insertRow();
    for (const value of [finding.ingredient, finding.matched, finding.iarc_group ?? "—", finding.concern, finding.note]) {
      row.insertCell().textContent = value;
    }
  }
  const unmatched = paragraph(report.unmatched.length ? `Not in the table: ${report.unmatched.join(", ")}` : "Every ingredient was matched.");
  return [summary, table, unmatched];
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}
