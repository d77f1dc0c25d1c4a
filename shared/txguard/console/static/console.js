// txguard console: the few behaviours the server-rendered pages need. No framework, no CDN.
"use strict";

async function postJSON(url, body) {
  const resp = await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || {status: resp.status, message: `HTTP ${resp.status}`, errors: []};
    throw err;
  }
  return data;
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function clearErrors(form, box) {
  if (form) {
    form.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
    form.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; });
  }
  if (box) { box.hidden = true; box.textContent = ""; }
}

// The error shape of every API answer: {status, message, errors: [{loc, msg}]}; fields named in
// `loc` get their message next to them, the rest goes in the box.
function showError(form, box, err) {
  clearErrors(form, box);
  box.hidden = false;
  box.appendChild(el("div", {}, err.message || "error"));
  const list = el("ul");
  for (const e of err.errors || []) {
    const loc = (e.loc || []).filter((p) => p !== "body");
    const field = loc.length ? String(loc[0]) : "";
    const input = form && field ? form.querySelector(`[name="${field}"]`) : null;
    if (input) input.classList.add("invalid");
    const slot = form && field ? form.querySelector(`.field-error[data-for="${field}"]`) : null;
    if (slot) slot.textContent = e.msg;
    list.appendChild(el("li", {}, `${loc.join(".") || "request"}: ${e.msg}`));
  }
  if (list.children.length) box.appendChild(list);
}

function setupAnalystName() {
  const input = document.getElementById("analyst-name");
  if (!input) return;
  input.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    document.cookie = `${input.dataset.cookie}=${encodeURIComponent(input.value.trim())}; path=/; SameSite=Strict`;
    location.reload();
  });
}

// Review item ------------------------------------------------------------------------------
function setupItem() {
  const root = document.getElementById("item");
  if (!root) return;
  const id = root.dataset.transaction;
  const form = document.getElementById("review-form");
  const box = document.getElementById("review-error");
  const result = document.getElementById("review-result");
  const state = document.getElementById("claim-state");
  const act = async (path, body) => {
    clearErrors(form, box);
    try { return await postJSON(`/api/queue/${encodeURIComponent(id)}/${path}`, body); }
    catch (err) { showError(form, box, err); return null; }
  };
  document.getElementById("claim").addEventListener("click", async () => {
    const item = await act("claim");
    if (item) state.textContent = `Claimed by ${item.claimed_by} until ${item.claim_expires_at.slice(11, 19)} UTC.`;
  });
  document.getElementById("release").addEventListener("click", async () => {
    const item = await act("release");
    if (item) state.textContent = "Free: claim it to give a verdict.";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const checked = form.querySelector("input[name=verdict]:checked");
    const body = {note: form.elements.note.value};
    if (checked) body.verdict = checked.value;
    const done = await act("review", body);
    if (!done) return;
    form.querySelector("fieldset").disabled = true;
    document.getElementById("claim").disabled = true;
    document.getElementById("release").disabled = true;
    state.textContent = `Labelled ${done.item.verdict} by ${done.item.labelled_by}.`;
    result.hidden = false;
    result.textContent = `Label ${done.label.label_id} published on labels (message ${done.message_id}); the item left the queue.`;
    followLabel(done.label.label_id);
  });
}

// After a verdict: what the label function did with its label (applied, or why nothing changed).
async function followLabel(labelId) {
  const out = document.getElementById("label-outcome");
  if (!out) return;
  out.hidden = false;
  out.dataset.status = "pending";
  out.textContent = "Waiting for the label function…";
  for (let i = 0; i < 20; i++) {
    let data = null;
    try { data = await (await fetch(`/api/labels/${encodeURIComponent(labelId)}`)).json(); } catch (e) { data = null; }
    if (data && data.status !== "pending") {
      out.dataset.status = data.status;
      const head = {applied: "Applied", unchanged: "Changed nothing", duplicate: "Already applied",
                    parked: "Parked", unknown: "Outcome not visible here"}[data.status] || data.status;
      out.textContent = `${head}: ${data.meaning}.`;
      out.className = `result label-${data.status}`;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  out.textContent = "The label function has not logged this label yet: it may still be retrying.";
}

// Manual scoring -----------------------------------------------------------------------------
function setupScore() {
  const form = document.getElementById("score-form");
  if (!form) return;
  const box = document.getElementById("score-error");
  const out = document.getElementById("score-result");
  if (!form.elements.transaction_id.value) {
    form.elements.transaction_id.value = `manual-${Date.now().toString(36)}`;
  }
  if (!form.elements.timestamp.value) {
    form.elements.timestamp.value = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form, box);
    const body = {};
    for (const input of form.elements) {
      if (!input.name) continue;
      const value = input.value.trim();
      if (input.name === "device_id" && !value) continue;
      // Numbers go as numbers when they parse; anything else is sent as typed, for the server to name.
      body[input.name] = input.name === "amount" && value !== "" && !isNaN(Number(value)) ? Number(value) : value;
    }
    let data;
    try { data = await postJSON("/api/score", body); }
    catch (err) { out.hidden = true; showError(form, box, err); return; }
    const d = data.decision;
    const badge = document.getElementById("result-outcome");
    badge.textContent = d.outcome;
    badge.className = `badge big ${d.outcome}`;
    document.getElementById("result-score").textContent = d.score.toFixed(4);
    document.getElementById("result-model").textContent = d.model_version;
    const reasons = document.getElementById("result-reasons");
    reasons.replaceChildren(...(d.reasons.length ? d.reasons : ["—"]).map((r) => el("li", {}, r)));
    const names = JSON.parse(document.getElementById("feature-names").textContent);
    const rows = (values) => Object.entries(values).map(([k, v]) => {
      const tr = el("tr");
      tr.appendChild(el("th", {title: k}, names[k] || k));
      tr.appendChild(el("td", {class: "num mono"}, fmtNumber(Number(v))));
      return tr;
    });
    document.getElementById("result-features").replaceChildren(...rows(data.features));
    document.getElementById("result-counterparty").replaceChildren(...rows(data.counterparty));
    out.hidden = false;
    form.elements.transaction_id.value = `manual-${Date.now().toString(36)}`;
  });
}

// As txguard.console.present.number: integers with separators, never scientific for large values.
function fmtNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return fmtInt(v);
  if (v !== 0 && Math.abs(v) < 1e-4) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

// Models ----------------------------------------------------------------------------------------
function setupModels() {
  const box = document.getElementById("models-error");
  const result = document.getElementById("models-result");
  document.querySelectorAll("form.alias-form").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      document.querySelectorAll("form.alias-form").forEach((f) => clearErrors(f, null));
      clearErrors(null, box);
      const body = {action: form.dataset.action, alias: form.dataset.alias, confirm: form.elements.confirm.value.trim()};
      if (form.dataset.version) body.version = form.dataset.version;
      try {
        const done = await postJSON("/api/models/alias", body);
        result.hidden = false;
        result.textContent = `${done.alias} now serves ${done.version} (was ${done.previous || "unset"}).`;
        setTimeout(() => location.reload(), 900);
      } catch (err) { showError(form, box, err); }
    });
  });
}

// Live view ---------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
const COLORS = {allow: "#2e9e6a", review: "#e0a100", block: "#d64545", invalid: "#8a63d2"};

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Numbers and times as every page shows them: integers with separators, times in UTC with the zone.
const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
const utcClock = (epochS) => new Date(epochS * 1000).toISOString().slice(11, 19);

function drawRates(svg, snap) {
  // viewBox units; the SVG scales uniformly (no preserveAspectRatio="none"), so text keeps its shape.
  const W = 720, H = 200, left = 40, right = 8, top = 10, bottom = 34;
  const n = snap.per_second.allow.length;
  const totals = snap.per_second.allow.map((_, i) =>
    snap.per_second.allow[i] + snap.per_second.review[i] + snap.per_second.block[i] + snap.invalid_per_second[i]);
  const max = Math.max(1, ...totals);
  const plotW = W - left - right, plotH = H - top - bottom;
  const bw = plotW / n;
  const base = top + plotH;
  const nodes = [];
  for (let i = 0; i < n; i++) {
    let y = base;
    for (const key of ["allow", "review", "block", "invalid"]) {
      const v = key === "invalid" ? snap.invalid_per_second[i] : snap.per_second[key][i];
      if (!v) continue;
      const h = (v / max) * plotH;
      y -= h;
      nodes.push(svgEl("rect", {x: left + i * bw + 0.5, y, width: Math.max(bw - 1, 1), height: h, fill: COLORS[key]}));
    }
  }
  // y axis: 0 and the largest second, in decisions per second.
  nodes.push(svgEl("line", {x1: left, y1: top, x2: left, y2: base, stroke: "#cfd4de"}));
  for (const [value, y] of [[0, base], [max, top]]) {
    const t = svgEl("text", {x: left - 4, y: y + 4, "font-size": 11, fill: "#667085", "text-anchor": "end", class: "y-tick"});
    t.textContent = `${fmtInt(value)}/s`;
    nodes.push(t);
  }
  // x axis: one tick every 30 s of the window, labelled with its UTC time.
  const axis = svgEl("g", {class: "x-axis"});
  axis.appendChild(svgEl("line", {x1: left, y1: base, x2: W - right, y2: base, stroke: "#cfd4de"}));
  const first = snap.now - n + 1;
  for (let i = 0; i < n; i++) {
    const second = first + i;
    if (second % 30 !== 0) continue;
    const x = left + i * bw + bw / 2;
    axis.appendChild(svgEl("line", {x1: x, y1: base, x2: x, y2: base + 4, stroke: "#98a2b3"}));
    const t = svgEl("text", {x, y: base + 16, "font-size": 11, fill: "#667085", "text-anchor": "middle",
                             class: "x-tick", "data-epoch": String(second)});
    t.textContent = utcClock(second);
    axis.appendChild(t);
  }
  const title = svgEl("text", {x: W - right, y: H - 3, "font-size": 11, fill: "#667085", "text-anchor": "end",
                               class: "x-title"});
  title.textContent = "time (UTC), decisions by when they were made";
  axis.appendChild(title);
  nodes.push(axis);
  svg.replaceChildren(...nodes);
}

function drawLatency(svg, latency) {
  const W = 720, H = 200, pad = 24;
  const counts = latency.counts;
  const max = Math.max(1, ...counts);
  const bw = W / counts.length;
  const nodes = [];
  counts.forEach((c, i) => {
    const h = (c / max) * (H - 2 * pad);
    nodes.push(svgEl("rect", {x: i * bw + 4, y: H - pad - h, width: bw - 8, height: h, fill: "#2f5bea"}));
    const ms = i < latency.edges_ms.length ? latency.edges_ms[i] : latency.edges_ms[latency.edges_ms.length - 1];
    const unit = ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
    const t = svgEl("text", {x: i * bw + bw / 2, y: H - 6, "font-size": 11, fill: "#667085", "text-anchor": "middle"});
    t.textContent = i < latency.edges_ms.length ? `≤${unit}` : `>${unit}`;
    nodes.push(t);
    if (c) {
      const v = svgEl("text", {x: i * bw + bw / 2, y: H - pad - h - 3, "font-size": 11, fill: "#1d2330", "text-anchor": "middle"});
      v.textContent = fmtInt(c);
      nodes.push(v);
    }
  });
  svg.replaceChildren(...nodes);
}

function renderLive(snap) {
  for (const o of ["allow", "review", "block"]) document.getElementById(`rate-${o}`).textContent = snap.rate[o];
  const t = snap.totals;
  document.getElementById("total-decided").textContent = fmtInt(t.allow + t.review + t.block);
  document.getElementById("total-invalid").textContent = fmtInt(t.invalid);
  document.getElementById("total-dead").textContent = fmtInt(t.dead_lettered);
  const mark = snap.since || snap.started;
  document.getElementById("totals-note").firstChild.textContent = snap.since
    ? "Totals since the stream started, " : "Totals of what this console received since it started, ";
  document.getElementById("totals-since").textContent =
    `${new Date(mark * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
  const last = snap.latency.edges_ms[snap.latency.edges_ms.length - 1];
  const fmt = (v) => (v === null ? "–" : v === "inf" ? `> ${last / 1000} s` : v >= 1000 ? `≤ ${v / 1000} s` : `≤ ${v} ms`);
  document.getElementById("p50").textContent = fmt(snap.latency.p50_ms);
  document.getElementById("p95").textContent = fmt(snap.latency.p95_ms);
  document.getElementById("p99").textContent = fmt(snap.latency.p99_ms);
  drawRates(document.getElementById("rate-chart"), snap);
  drawLatency(document.getElementById("latency-chart"), snap.latency);
}

function setupLive() {
  const root = document.getElementById("live");
  if (!root) return;
  const status = document.getElementById("live-status");
  renderLive(JSON.parse(document.getElementById("live-initial").textContent));
  let polling = null;
  const poll = async () => {
    try {
      renderLive(await (await fetch("/api/live")).json());
      root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
      if (root.dataset.mode === "polling") status.textContent = `polling (live streams busy) · ${new Date().toLocaleTimeString()}`;
    } catch (e) { status.textContent = "offline"; }
  };
  const source = new EventSource("/api/live/stream");
  source.onmessage = (ev) => {
    const snap = JSON.parse(ev.data);
    renderLive(snap);
    status.textContent = `live · ${utcClock(snap.now)} UTC`;  // the server's clock, in UTC like every page
    status.classList.add("on");
    root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  };
  source.onerror = () => {
    status.classList.remove("on");
    // CLOSED: the console refused the stream (its live streams are all taken): poll from now on.
    const refused = source.readyState === EventSource.CLOSED;
    status.textContent = refused ? "polling (live streams busy)" : "reconnecting…";
    root.dataset.mode = refused ? "polling" : "reconnecting";
    if (!polling) polling = setInterval(poll, 2000);
  };
  source.onopen = () => { root.dataset.mode = "stream"; if (polling) { clearInterval(polling); polling = null; } };
}

// Review queue: say when new items arrived (the list itself changes only on reload, so a row never
// moves under the analyst's pointer).
function setupQueue() {
  const root = document.getElementById("queue");
  if (!root) return;
  setInterval(async () => {
    try {
      const data = await (await fetch(`/api/queue?outcome=${encodeURIComponent(root.dataset.outcome)}`)).json();
      const first = data.items.length ? data.items[0].transaction_id : "";
      if (first !== root.dataset.first || data.items.length !== Number(root.dataset.total)) {
        document.getElementById("queue-news").hidden = false;
      }
    } catch (e) { /* offline for a moment: try again on the next tick */ }
  }, 5000);
}


// Rules -----------------------------------------------------------------------------------------
// The rule set is edited as one card per rule; every action sends {"rules": [...]} as it stands.
// Check problems come back with the rule, line and column: shown under that rule's condition, with a
// caret under the column.
function setupRules() {
  const root = document.getElementById("rules");
  if (!root) return;
  const list = document.getElementById("rule-list");
  const box = document.getElementById("rules-error");
  const result = document.getElementById("rules-result");
  const outcomes = ["review", "block", "allow"];
  const card = (rule) => {
    const div = el("div", {class: "rule-card"});
    const name = el("input", {name: "name", placeholder: "name (a-z, 0-9, _)", "aria-label": "rule name", size: "28"});
    name.value = rule.name || "";
    const cond = el("textarea", {name: "condition", rows: "2", cols: "80", placeholder: "amount > 100 && is_new_counterparty == 1", "aria-label": "condition", spellcheck: "false"});
    cond.value = rule.condition || "";
    const outcome = el("select", {name: "outcome", "aria-label": "outcome"});
    for (const o of outcomes) { const opt = el("option", {}, o); if (o === (rule.outcome || "review")) opt.selected = true; outcome.appendChild(opt); }
    const reason = el("input", {name: "reason", placeholder: "reason shown on the decision", size: "50", "aria-label": "reason"});
    reason.value = rule.reason || "";
    const remove = el("button", {type: "button", class: "danger small"}, "Remove");
    remove.addEventListener("click", () => div.remove());
    const problems = el("pre", {class: "rule-problems", hidden: ""});
    div.append(name, outcome, reason, remove, cond, problems);
    return div;
  };
  const rules = () => [...list.querySelectorAll(".rule-card")].map((c) => ({
    name: c.querySelector("[name=name]").value.trim(), condition: c.querySelector("[name=condition]").value,
    outcome: c.querySelector("[name=outcome]").value, reason: c.querySelector("[name=reason]").value.trim()}));
  const clearProblems = () => list.querySelectorAll(".rule-card").forEach((c) => {
    c.classList.remove("invalid");
    const p = c.querySelector(".rule-problems"); p.hidden = true; p.textContent = "";
  });
  const showProblems = (problems) => {
    clearProblems();
    const cards = [...list.querySelectorAll(".rule-card")];
    const general = [];
    for (const p of problems) {
      const c = cards.find((x) => x.querySelector("[name=name]").value.trim() === p.rule);
      if (!c || !p.line) { general.push(p.message); continue; }
      c.classList.add("invalid");
      const slot = c.querySelector(".rule-problems");
      const line = c.querySelector("[name=condition]").value.split("\n")[p.line - 1] || "";
      slot.textContent += `${line}\n${" ".repeat(Math.max(0, p.column - 1))}^ line ${p.line}, column ${p.column}: ${p.message}\n`;
      slot.hidden = false;
    }
    if (general.length) { box.hidden = false; box.textContent = general.join("\n"); }
  };
  let draft = {rules: []};
  try { draft = JSON.parse(root.dataset.draft); } catch (e) { draft = {rules: []}; }
  for (const r of draft.rules) list.appendChild(card(r));
  if (!draft.rules.length) list.appendChild(card({}));
  document.getElementById("rule-add").addEventListener("click", () => list.appendChild(card({})));
  const say = (text) => { result.hidden = false; result.textContent = text; };
  document.getElementById("rules-check").addEventListener("click", async () => {
    clearErrors(null, box); result.hidden = true;
    try {
      const data = await postJSON("/api/rules/check", {rules: rules()});
      if (data.ok) { clearProblems(); say(`All ${rules().length} rules pass the check (they read ${data.reads.join(", ")}).`); }
      else showProblems(data.problems);
    } catch (err) { showError(null, box, err); }
  });
  const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`);
  document.getElementById("rules-backtest").addEventListener("click", async () => {
    clearErrors(null, box); result.hidden = true;
    const out = document.getElementById("backtest-result");
    const since = document.getElementById("backtest-since").value.trim();
    let r;
    try { r = await postJSON("/api/rules/backtest", {rules: rules(), since: since || null}); }
    catch (err) { out.hidden = true; showError(null, box, err); return; }
    document.getElementById("backtest-summary").textContent =
      `${r.transactions.toLocaleString()} transactions, ${r.first_day}..${r.last_day}, ${r.frauds_known} frauds known at ${r.as_of}; ` +
      `model alone flags ${r.model.flagged} (precision ${pct(r.model.precision)}, recall ${pct(r.model.recall)}), ` +
      `with the rules ${r.with_rules.flagged} (precision ${pct(r.with_rules.precision)}, recall ${pct(r.with_rules.recall)}): ` +
      `${r.caught_model_missed} frauds the model missed, ${r.extra_reviews_per_day} extra reviews a day.`;
    const body = document.querySelector("#backtest-table tbody");
    body.replaceChildren(...r.rules.map((x) => {
      const tr = el("tr", {"data-rule": x.rule});
      const cells = [x.rule, x.outcome, x.hits, x.hits_per_day, pct(x.precision), pct(x.recall), x.caught_model_missed, x.extra_reviews_per_day];
      cells.forEach((v, i) => tr.appendChild(el("td", i > 1 ? {class: "num mono"} : {}, String(v))));
      return tr;
    }));
    out.hidden = false;
  });
  const saveForm = document.getElementById("rules-save");
  saveForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(saveForm, box); result.hidden = true;
    try {
      const done = await postJSON("/api/rules/save", {rules: rules(), reason: saveForm.elements.reason.value});
      say(`Saved as ${done.version} on staging by ${done.saved_by}: the scoring function shadows it from its next poll.`);
      setTimeout(() => location.reload(), 1500);
    } catch (err) {
      showError(saveForm, box, err);
      const check = await postJSON("/api/rules/check", {rules: rules()}).catch(() => null);
      if (check && !check.ok) showProblems(check.problems);
    }
  });
  document.querySelectorAll("#rules-promote, #rules-rollback").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form, box); result.hidden = true;
      try {
        const done = await postJSON("/api/rules/production", {action: form.dataset.action, confirm: form.elements.confirm.value.trim()});
        say(`production now applies ${done.version} (${done.action} by ${done.by}).`);
        setTimeout(() => location.reload(), 1500);
      } catch (err) { showError(form, box, err); }
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupAnalystName();
  setupQueue();
  setupItem();
  setupScore();
  setupModels();
  setupRules();
  setupLive();
});
