// riverwatch dashboard. Plain JavaScript and hand-drawn SVG: no chart library, no build step,
// nothing fetched from a CDN (the page's Content-Security-Policy only allows this origin).
// The charts are sparklines, bars and one band-and-line kind; a library would add more code
// than it saves.
//
// Data: the live figures come from GET /v1/dashboard/stream (server-sent events, every
// second, opened with a stream token); the other panels poll their endpoints with the Authorization header. A panel whose
// endpoint answers 404 or has nothing yet shows "no data yet" and keeps polling, so it lights
// up as soon as data arrives (or the endpoint is deployed) without a page reload.
"use strict";

const KEY_STORE = "riverwatch.key";
const WINDOW_S = 60;
const SVG_NS = "http://www.w3.org/2000/svg";
const ALERT_KINDS = ["drift", "fairness", "performance", "quality", "forecast_anomaly", "retrain", "system"];
const FORECAST_SERIES = 3;

const $ = (id) => document.getElementById(id);
// gen counts start()s: a poll loop of an earlier start (say, before "change key") ends itself.
const state = { key: null, online: null, lastSummary: 0, source: null, timers: [], stopped: false, gen: 0 };

// ---------------------------------------------------------------- key handling
function keyFromUrl() {
  const url = new URL(window.location.href);
  const key = url.searchParams.get("key");
  if (key) {
    sessionStorage.setItem(KEY_STORE, key);
    url.searchParams.delete("key");
    // The key must not stay in the address bar, the history or a bookmark.
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(KEY_STORE);
}

function askForKey(message) {
  stop();
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  $("board").hidden = true;
  const err = $("key-error");
  err.hidden = !message;
  err.textContent = message || "";
  const dialog = $("key-dialog");
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  $("key-input").value = "";
  $("key-dialog").close();
  start(key);
});
$("forget-key").addEventListener("click", () => askForKey(""));

// ---------------------------------------------------------------- HTTP
class Unauthorized extends Error {}

// {status, body}: body is null for 404/empty answers and network errors (status 0).
async function api(path) {
  let res;
  try {
    res = await fetch(path, { headers: { Authorization: `Bearer ${state.key}` }, cache: "no-store" });
  } catch (e) {
    return { status: 0, body: null, detail: "API not reachable" };
  }
  if (res.status === 401) throw new Unauthorized("that key was refused (401)");
  if (res.status === 403) throw new Unauthorized("that key lacks the 'read' scope (403)");
  let body = null;
  let detail = "";
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${res.status}`;
    body = null;
  }
  return { status: res.status, body, detail };
}

function every(ms, fn) {
  const gen = state.gen;
  const run = async () => {
    if (state.stopped || gen !== state.gen) return;
    try {
      await fn();
    } catch (e) {
      if (e instanceof Unauthorized) {
        askForKey(e.message);
        return;
      }
      console.error(e);
    }
    if (!state.stopped && gen === state.gen) state.timers.push(setTimeout(run, ms));
  };
  run();
}

function stop() {
  state.stopped = true;
  state.gen += 1;
  state.timers.forEach(clearTimeout);
  state.timers = [];
  if (state.source) state.source.close();
  state.source = null;
}

// ---------------------------------------------------------------- small DOM and format helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "title") node.title = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function fmt(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x) && Math.abs(x) >= 1) return x.toLocaleString("en-US");
  const a = Math.abs(x);
  if (a >= 1000) return x.toLocaleString("en-US", { maximumFractionDigits: 0 });
  if (a >= 1) return x.toFixed(digits);
  if (a === 0) return "0";
  return x.toPrecision(3);
}

const plural = (n, one, many) => `${fmt(n)} ${n === 1 ? one : many}`;
const pct = (x, d = 1) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(d)}%`);
const bytes = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : `${(b / (1 << 20)).toFixed(0)} MiB`);
// Latency quantiles are bin upper bounds; the top bound (1000 ms) also stands for "above it".
const latency = (ms) => (ms === null || ms === undefined ? "–" : ms >= 1000 ? ">0.5 s" : `≤${ms} ms`);
const clock = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour12: false });

// Show a panel's data or its "no data yet" line (with the reason when the API gave one).
function panel(cardId, hasData, why) {
  const card = $(cardId);
  const empty = card.querySelector(".empty");
  card.classList.toggle("nodata", !hasData);
  empty.hidden = hasData;
  if (!hasData) empty.textContent = why ? `no data yet — ${why}` : "no data yet";
}

function reason(res) {
  if (res.status === 404 && res.detail === "Not Found") return "this API has no such endpoint yet";
  return res.detail || "";
}

// ---------------------------------------------------------------- charts
function sparkline(node, values, { color = "#2563eb", min = 0 } = {}) {
  clear(node);
  const W = 300;
  const H = 48;
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (pts.length < 2) return;
  const max = Math.max(...pts.map(([, v]) => v), min + 1e-9);
  const x = (i) => (i / (values.length - 1)) * W;
  const y = (v) => H - 2 - ((v - min) / (max - min)) * (H - 6);
  const line = pts.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const first = pts[0][0];
  const last = pts[pts.length - 1][0];
  node.append(svg("polygon", { points: `${x(first)},${H} ${line} ${x(last)},${H}`, fill: color, "fill-opacity": "0.12" }));
  node.append(svg("polyline", { points: line, fill: "none", stroke: color, "stroke-width": "1.5", "vector-effect": "non-scaling-stroke" }));
}

function histogram(node, counts) {
  clear(node);
  const W = 360;
  const H = 150;
  const top = 14;
  const bottom = 20;
  const n = counts.length;
  const bw = W / n;
  const logMax = Math.log10(1 + Math.max(...counts, 1));
  counts.forEach((c, i) => {
    const h = c > 0 ? Math.max(2, (Math.log10(1 + c) / logMax) * (H - top - bottom)) : 0;
    const hot = i >= n / 2;
    const bar = svg("rect", { x: i * bw + 2, y: H - bottom - h, width: bw - 4, height: h, class: hot ? "bar hot" : "bar" });
    const tip = svg("title", {});
    tip.textContent = `score ${(i / n).toFixed(1)}–${((i + 1) / n).toFixed(1)}: ${c.toLocaleString("en-US")}`;
    bar.append(tip);
    node.append(bar);
    const label = svg("text", { x: i * bw + bw / 2, y: H - bottom - h - 3, "text-anchor": "middle", class: "val" });
    label.textContent = c ? fmt(c) : "";
    node.append(label);
    const tick = svg("text", { x: i * bw + bw / 2, y: H - 6, "text-anchor": "middle", class: "axis" });
    tick.textContent = (i / n).toFixed(1);
    node.append(tick);
  });
  node.append(svg("line", { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: "base" }));
}

// A forecast: the observed past (as many points as the horizon), interval band, forecast line,
// "now" line, anomalies as observed points with the interval they fell outside of.
function forecastChart(fc, anomalies) {
  const W = 380;
  const H = 150;
  const L = 44;
  const R = 6;
  const T = 8;
  const B = 18;
  const node = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart" });
  const pts = fc.points.map((p) => ({ t: Date.parse(p.timestamp), v: p.value, lo: p.lower, hi: p.upper }));
  if (!pts.length) return node;
  const asOf = Date.parse(fc.as_of);
  const step = pts.length > 1 ? pts[1].t - pts[0].t : 60000;
  const t1 = pts[pts.length - 1].t;
  const seen = (fc.observed || []).map((o) => ({ t: Date.parse(o.timestamp), v: o.value }));
  // The past side: the observed points, and anomalies of the last horizon; at least a lead-in.
  const recent = anomalies.filter((a) => a.t >= asOf - (t1 - asOf) && a.t <= t1);
  const t0 = Math.min(
    asOf - Math.max((t1 - asOf) * 0.15, step),
    ...recent.map((a) => a.t - step),
    ...seen.map((o) => o.t),
  );
  const marks = recent;
  const ys = pts.flatMap((p) => [p.lo, p.hi])
    .concat(marks.flatMap((a) => [a.v, a.lo, a.hi]), seen.map((o) => o.v));
  let ymin = Math.min(...ys.filter(Number.isFinite));
  let ymax = Math.max(...ys.filter(Number.isFinite));
  if (ymax - ymin < 1e-9) { ymin -= 1; ymax += 1; }
  const pad = (ymax - ymin) * 0.08;
  ymin -= pad; ymax += pad;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - ymin) / (ymax - ymin)) * (H - T - B);
  const band = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.hi).toFixed(1)}`)
    .concat(pts.slice().reverse().map((p) => `${x(p.t).toFixed(1)},${y(p.lo).toFixed(1)}`));
  node.append(svg("polygon", { points: band.join(" "), class: "band" }));
  node.append(svg("polyline", { points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "), class: "fline" }));
  if (seen.length) {
    node.append(svg("polyline", { points: seen.map((o) => `${x(o.t).toFixed(1)},${y(o.v).toFixed(1)}`).join(" "), class: "oline" }));
  }
  node.append(svg("line", { x1: x(asOf), x2: x(asOf), y1: T, y2: H - B, class: "now" }));
  for (const a of marks) {
    if (Number.isFinite(a.lo) && Number.isFinite(a.hi)) {
      node.append(svg("line", { x1: x(a.t), x2: x(a.t), y1: y(a.lo), y2: y(a.hi), class: "whisker" }));
    }
    const dot = svg("circle", { cx: x(a.t), cy: y(a.v), r: 3.5, class: "anomaly" });
    const tip = svg("title", {});
    tip.textContent = a.message;
    dot.append(tip);
    node.append(dot);
  }
  const label = (txt, attrs) => {
    const t = svg("text", attrs);
    t.textContent = txt;
    node.append(t);
  };
  label(fmt(ymax, 1), { x: L - 4, y: T + 8, "text-anchor": "end", class: "axis" });
  label(fmt(ymin, 1), { x: L - 4, y: H - B, "text-anchor": "end", class: "axis" });
  const hhmm = (t) => new Date(t).toISOString().slice(5, 16).replace("T", " ");
  if (x(asOf) - L > 90) label(hhmm(t0), { x: L, y: H - 4, class: "axis" });
  label(`now ${hhmm(asOf)}`, { x: Math.max(x(asOf), L + 34), y: H - 4, "text-anchor": "middle", class: "axis" });
  label(hhmm(t1).slice(6), { x: W - R, y: H - 4, "text-anchor": "end", class: "axis" });
  return node;
}

// ---------------------------------------------------------------- live summary (SSE)
function renderSummary(s) {
  state.lastSummary = Date.now();
  const live = s.live;
  const scored = s.series.scored;
  const last5 = scored.slice(-5);
  const rate = last5.reduce((a, b) => a + b, 0) / Math.max(1, last5.length);
  const tp = $("kpi-throughput");
  tp.textContent = fmt(rate, 1);
  tp.dataset.value = String(rate);
  sparkline($("spark-throughput"), scored);
  const peak = Math.max(0, ...scored);
  $("sub-throughput").textContent = `avg ${fmt(live.scored_per_s, 1)}/s · peak ${fmt(peak)}/s over ${s.window_s} s`;

  $("kpi-p50").textContent = latency(live.latency_ms.p50);
  $("kpi-p99").textContent = latency(live.latency_ms.p99);
  sparkline($("spark-latency"), s.series.p99_ms, { color: "#b45309" });
  const worst = Math.max(0, ...s.series.p99_ms.filter((v) => v !== null));
  $("sub-latency").textContent = worst ? `p99 per second · worst ${latency(worst)}` : "nothing scored in the last minute";

  const alerts = Math.round(live.fraud_alert_rate * live.scored);
  $("kpi-fraud").textContent = live.scored ? pct(live.fraud_alert_rate, 2) : "–";
  $("sub-fraud").textContent = live.scored ? `${plural(alerts, "fraud alert", "fraud alerts")} of ${fmt(live.scored)} scored` : "nothing scored yet";
  $("meter-fraud").style.width = `${Math.min(100, live.fraud_alert_rate * 100 * 10)}%`;

  const d = live.decisions;
  const total = d.approve + d.review + d.decline;
  const bar = clear($("decision-bar"));
  const table = clear($("decision-table"));
  for (const k of ["approve", "review", "decline"]) {
    const share = total ? d[k] / total : 0;
    const seg = el("span", { class: `seg ${k}`, title: `${k}: ${pct(share, 2)}` });
    seg.style.width = `${share * 100}%`;
    bar.append(seg);
    table.append(el("tr", {}, el("th", {}, el("i", { class: `dot ${k}` }), k), el("td", {}, fmt(d[k])), el("td", {}, total ? pct(share, 2) : "–")));
  }

  const hasScores = live.score_histogram.some((c) => c > 0);
  panel("card-scores", hasScores, "nothing scored in the last minute");
  if (hasScores) histogram($("histogram"), live.score_histogram);
  else clear($("histogram"));

  state.online = s.online_model;
  if ($("model-online")) $("model-online").textContent = s.online_model ? `v${s.online_model}` : "none yet";
  $("fact-model").textContent = s.online_model ? `v${s.online_model}` : "none yet";
  $("fact-workers").textContent = String(s.workers);
  $("fact-learned").textContent = fmt(s.learner.learned ?? 0);
  $("fact-memory").textContent = s.memory && s.memory.redis ? bytes(s.memory.redis) : "–";
  if (s.memory && s.memory.broker) $("fact-memory").textContent += ` · broker ${bytes(s.memory.broker)}`;
  $("fact-updated").textContent = clock(s.now * 1000);
  setLive(true);
}

function setLive(on) {
  const node = $("live");
  node.classList.toggle("on", on);
  node.classList.toggle("off", !on);
  $("live-text").textContent = on ? "live" : "reconnecting…";
}

// EventSource cannot send the Authorization header, and the key must not travel in a URL on
// every reconnect: the stream opens with a short-lived token (POST /v1/stream-tokens) that
// works for event streams only, and a new stream with a new token replaces it halfway
// through the token's life.
async function streamToken() {
  const res = await fetch("/v1/stream-tokens", {
    method: "POST",
    headers: { Authorization: `Bearer ${state.key}` },
    cache: "no-store",
  });
  if (res.status === 401) throw new Unauthorized("that key was refused (401)");
  if (res.status === 403) throw new Unauthorized("that key lacks the 'read' scope (403)");
  if (!res.ok) throw new Error(`stream token: HTTP ${res.status}`);
  return res.json();
}

async function openStream() {
  const gen = state.gen;
  const retry = () => {
    if (!state.stopped && gen === state.gen) state.timers.push(setTimeout(openStream, 2000));
  };
  let grant;
  try {
    grant = await streamToken();
  } catch (e) {
    if (e instanceof Unauthorized) askForKey(e.message);
    else retry();
    return;
  }
  if (state.stopped || gen !== state.gen) return;
  const url = `/v1/dashboard/stream?window=${WINDOW_S}&token=${encodeURIComponent(grant.token)}`;
  const source = new EventSource(url);
  if (state.source) state.source.close();
  state.source = source;
  source.addEventListener("summary", (ev) => renderSummary(JSON.parse(ev.data)));
  state.timers.push(setTimeout(() => {
    if (state.source === source && !state.stopped && gen === state.gen) openStream();
  }, grant.expires_in * 500));
  source.onerror = async () => {
    // The server ends each response after a few seconds and EventSource reconnects by itself;
    // only a closed source (expired token, server gone) needs us.
    if (source.readyState !== EventSource.CLOSED || state.stopped || state.source !== source) return;
    try {
      await api(`/v1/dashboard/summary?window=${WINDOW_S}`);
      retry();
    } catch (e) {
      if (e instanceof Unauthorized) askForKey(e.message);
    }
  };
}

// ---------------------------------------------------------------- alerts
async function pollAlerts() {
  const withFraud = $("show-fraud").checked;
  const kinds = withFraud ? "" : ALERT_KINDS.map((k) => `&kind=${k}`).join("");
  const res = await api(`/v1/alerts?limit=20${kinds}`);
  const items = res.body && Array.isArray(res.body.items) ? res.body.items : [];
  panel("card-alerts", items.length > 0, res.body ? "no alert delivered yet" : reason(res));
  const feed = clear($("alert-feed"));
  for (const a of items) {
    const at = a.id && /^\d+/.test(a.id) ? Number(a.id.split("-")[0]) : Date.parse(a.timestamp);
    feed.append(
      el("li", { class: `alert ${a.severity}`, title: `${a.alert_id}\nalert time ${a.timestamp}\n${a.message}` },
        el("time", {}, clock(at)),
        el("span", { class: `sev ${a.severity}` }, a.severity),
        el("span", { class: "kind" }, a.kind.replace("_", " ")),
        el("span", { class: "subject" }, a.subject),
        el("span", { class: "msg" }, a.message)),
    );
  }
}

// ---------------------------------------------------------------- models and policy actions
// GET /v1/models: {champion, challenger, versions: [{name, stage, created, metrics}], audit:
// [{at, action, name, reason}] oldest first}; GET /v1/monitor/actions: {actions: [{at, action,
// target, reason, ...}] newest first}. The online learner's version comes with the summary.
function metricText(m) {
  if (!m) return "";
  return ["auc", "ap", "cp@100"]
    .filter((k) => typeof m[k] === "number")
    .map((k) => `${k.toUpperCase()} ${m[k].toFixed(3)}`)
    .join(" · ");
}

const shortTime = (iso) => String(iso || "").replace("T", " ").slice(5, 19);

async function pollModels() {
  const [res, acts] = await Promise.all([api("/v1/models"), api("/v1/monitor/actions?limit=10")]);
  const body = clear($("models-body"));
  const b = res.body || {};
  const table = el("table", { class: "kv" });
  table.append(el("tr", {}, el("th", {}, "online"), el("td", { id: "model-online" }, state.online ? `v${state.online}` : "none yet"),
    el("td", { class: "muted" }, "River, learns from labels")));
  for (const role of ["champion", "challenger"]) {
    const m = b[role];
    table.append(el("tr", {}, el("th", {}, role), el("td", {}, m ? m.name : "none"),
      el("td", { class: "muted" }, m ? metricText(m.metrics) : "")));
  }
  body.append(table);
  const versions = Array.isArray(b.versions) ? b.versions.length : 0;
  if (res.body) body.append(el("p", { class: "sub" }, `${plural(versions, "batch version", "batch versions")} registered`));
  const stageChanges = (b.audit || []).map((a) => ({ at: a.at, what: `${a.action} ${a.name || ""}`, why: a.reason }));
  const policy = (acts.body && acts.body.actions ? acts.body.actions : []).map((a) => ({ at: a.at, what: `${a.action} ${a.target || ""}`, why: a.reason }));
  const actions = stageChanges.concat(policy).sort((x, y) => String(y.at).localeCompare(String(x.at))).slice(0, 6);
  body.append(el("h3", {}, "last actions"));
  if (actions.length) {
    const list = el("ol", { class: "actions" });
    for (const a of actions) {
      list.append(el("li", { title: a.why || "" }, el("time", {}, shortTime(a.at)), el("span", {}, a.what),
        el("span", { class: "muted" }, a.why || "")));
    }
    body.append(list);
  } else {
    body.append(el("p", { class: "none" }, res.body || acts.body ? "none yet" : `none yet — ${reason(res)}`));
  }
  panel("card-models", true);
}

// ---------------------------------------------------------------- monitors
// GET /v1/monitor/{drift,fairness,performance}: {status, latest, history}; latest is null
// until the monitor closes its first window.
async function monitor(kind, cardId, whole = false) {
  const res = await api(`/v1/monitor/${kind}?history=0`);
  const latest = res.body ? res.body.latest : null;
  const why = res.body ? "the monitor has not closed a window yet" : reason(res);
  if (!latest) for (const id of [].concat(cardId)) panel(id, false, why);  // one or more cards
  return whole && latest ? res.body : latest;  // whole: the answer's other fields too
}

const windowText = (w) => `window of ${fmt(w.n)} to ${shortTime(w.window_end)}`;

async function pollDrift() {
  const latest = await monitor("drift", ["card-drift", "card-quality"]);
  const body = clear($("drift-body"));
  if (!latest) return clear($("quality-body"));
  renderQuality(latest);  // the same window's data quality (judged on its own reference)
  if (latest.status && latest.status.state !== "ready") {  // nothing judged before the reference
    body.append(el("p", { class: "sub" }, latest.status.message));
    $("drift-note").textContent = latest.status.message;
    panel("card-drift", true);
    return;
  }
  const data = latest.data || { columns: [] };
  const cols = data.columns.slice().sort((a, b) => Number(b.drifted) - Number(a.drifted) || b.score - a.score);
  // Bars run to twice the threshold (the tick at the middle); beyond that they are full.
  const table = el("table", { class: "bars" });
  for (const c of cols.slice(0, 12)) {
    const fill = el("span", { class: c.drifted ? "fill bad" : "fill" });
    fill.style.width = `${Math.min(1, c.score / (2 * c.threshold || 1)) * 100}%`;
    const tick = el("span", { class: "tick", title: `threshold ${c.threshold}` });
    table.append(el("tr", { class: c.drifted ? "flagged" : "", title: `${c.method}, threshold ${c.threshold}` },
      el("th", {}, c.column), el("td", { class: "barcell" }, el("span", { class: "track" }, fill, tick)),
      el("td", {}, c.score >= 100 ? fmt(Math.round(c.score)) : c.score.toFixed(3)), el("td", {}, c.drifted ? "drift" : "")));
  }
  body.append(table);
  const p = latest.prediction;
  // prediction drift reads the champion's scores when it scored the reference (its `score`)
  const whose = p && p.score === "batch_score" ? "champion's score PSI" : "score PSI";
  const pred = p && p.psi !== null ? ` · ${whose} ${p.psi.toFixed(3)}${p.drifted ? " (drift)" : ""}` : "";
  body.append(el("p", { class: "sub" }, `${windowText(latest)} vs ${latest.reference ? latest.reference.source : "reference"}${pred}`));
  const where = data.strongest ? ` (strongest: ${data.strongest.column} in ${data.strongest.segment === "*" ? "all events" : data.strongest.segment})` : "";
  $("drift-note").textContent = `${data.n_drifted} of ${cols.length} features drifted${where}`;
  panel("card-drift", true);
}

// The drift answer's quality: the window's data-quality findings (each a quality alert),
// and its rates furthest above the reference's.
function renderQuality(latest) {
  const body = clear($("quality-body"));
  const q = latest.quality;
  if (!q) return panel("card-quality", false, "data quality has no reference yet (warming up)");
  const found = q.findings || [];
  const list = el("ul", { class: "findings" });
  for (const f of found.slice(0, 8)) {
    list.append(el("li", { class: "flagged" }, el("b", {}, f.subject), " ", f.message));
  }
  if (found.length > 8) list.append(el("li", {}, `and ${fmt(found.length - 8)} more`));
  if (!found.length) list.append(el("li", { class: "ok" }, "no finding: every rate within the reference's"));
  body.append(list);
  const rates = Object.entries(q.rates || {})
    .sort(([, a], [, b]) => b.rate - b.reference - (a.rate - a.reference)).slice(0, 6);
  if (rates.length) {
    const table = el("table", { class: "grid" });
    table.append(el("tr", {}, ...["field", "rate", "reference", "events"].map((h) => el("th", {}, h))));
    for (const [name, r] of rates) {
      table.append(el("tr", {}, el("td", {}, name), el("td", {}, pct(r.rate, 2)),
        el("td", {}, pct(r.reference, 2)), el("td", {}, `${fmt(r.count)} of ${fmt(r.n)}`)));
    }
    body.append(table);
  }
  const other = Object.entries(q.rejected_other || {})
    .map(([topic, r]) => `, ${fmt(r.rejected)} of ${fmt(r.records)} ${topic}`).join("");
  body.append(el("p", { class: "sub" }, `${fmt(q.events)} events, ${fmt(q.rejected)} rejected${other} · ${windowText(latest)}`));
  $("quality-note").textContent = found.length ? plural(found.length, "finding", "findings") : "no finding";
  panel("card-quality", true);
}

async function pollFairness() {
  const latest = await monitor("fairness", "card-fairness");
  const body = clear($("fairness-body"));
  if (!latest) return;
  const attrs = Object.values(latest.attributes || {});
  const table = el("table", { class: "grid" });
  table.append(el("tr", {}, ...["group", "n", "selected", "TPR", "FPR"].map((h) => el("th", {}, h))));
  for (const a of attrs) {
    const flag = a.significant ? " · significant gap" : "";
    table.append(el("tr", { class: a.significant ? "attr flagged" : "attr" }, el("td", { colspan: "5" },
      el("b", {}, a.attribute), ` DP diff ${fmt(a.demographic_parity_difference, 3)} · EO diff ${fmt(a.equalized_odds_difference, 3)}${flag}`)));
    for (const [g, r] of Object.entries(a.groups).slice(0, 8)) {
      table.append(el("tr", {}, el("td", {}, g), el("td", {}, fmt(r.n)), el("td", {}, pct(r.selection_rate, 1)),
        el("td", {}, pct(r.tpr, 1)), el("td", {}, pct(r.fpr, 2))));
    }
  }
  body.append(table);
  body.append(el("p", { class: "sub" }, windowText(latest)));
  $("fairness-note").textContent = `${plural(attrs.length, "attribute", "attributes")}, labeled events`;
  panel("card-fairness", attrs.length > 0, "no protected attributes in the window");
}

async function pollPerformance() {
  const answer = await monitor("performance", "card-performance", true);
  const body = clear($("performance-body"));
  if (!answer) return;
  const latest = answer.latest;
  const models = Object.entries(latest.models || {});
  const cols = [["AUC", "auc"], ["AP", "ap"], ["CP@k", "card_precision"], ["recall", "recall"]];
  const table = el("table", { class: "grid" });
  table.append(el("tr", {}, el("th", {}, "model"), ...cols.map(([h]) => el("th", {}, h)), el("th", {}, "labeled"), el("th", {}, "fraud")));
  for (const [name, m] of models) {
    const tip = `precision ${fmt(m.precision, 3)} at ${m.threshold}, CP@${m.k}, ${pct(m.maturity, 0)} of the window matured`;
    table.append(el("tr", { title: m.provisional ? `${tip}; provisional: labels still maturing` : tip },
      el("td", {}, name + (m.provisional ? "*" : "")), ...cols.map(([, k]) => el("td", {}, m[k] === null ? "–" : m[k].toFixed(3))),
      el("td", {}, fmt(m.labeled)), el("td", {}, fmt(m.frauds))));
  }
  body.append(table);
  const prov = models.some(([, m]) => m.provisional) ? " · *provisional, labels still maturing" : "";
  body.append(el("p", { class: "sub" }, `${windowText(latest)}${latest.champion ? ` · champion ${latest.champion}` : ""}${prov}`));
  // GET /v1/monitor/performance's estimated.latest: the newest scored window's precision and
  // recall estimated from its scores (CBPE), or realised once its labels matured.
  const est = answer.estimated && answer.estimated.latest;
  if (est) {
    const e = est.estimated || {}, ref = est.reference || {};
    const ci = (m) => (est.source === "estimate" && e[`${m}_low`] !== null ? ` (${fmt(e[`${m}_low`], 2)}–${fmt(e[`${m}_high`], 2)})` : "");
    const vs = ref.precision !== undefined ? ` · reference ${fmt(ref.precision, 2)} / ${fmt(ref.recall, 2)}` : "";
    body.append(el("p", { class: "sub", id: "performance-estimate" },
      `${est.source === "realised" ? "realised" : "estimated before labels"}: precision ${fmt(est.precision, 3)}${ci("precision")}, ` +
      `recall ${fmt(est.recall, 3)}${ci("recall")}${vs} · ${windowText(est)}`));
  }
  panel("card-performance", models.length > 0, "no model scored the window");
}

// ---------------------------------------------------------------- forecasts
async function pollForecasts() {
  const res = await api("/v1/series");
  const grid = clear($("forecasts"));
  const series = res.body && Array.isArray(res.body.series) ? res.body.series : [];
  const ready = series.filter((s) => s.model).slice(0, FORECAST_SERIES);
  if (!ready.length) {
    panel("card-forecasts", false, res.body ? (series.length ? "series are warming up" : "no metric series seen yet") : reason(res));
    return;
  }
  const charts = await Promise.all(ready.map(async (s) => {
    const id = encodeURIComponent(s.series_id);
    const [fc, an] = await Promise.all([
      api(`/v1/forecasts/${id}`),
      api(`/v1/alerts?kind=forecast_anomaly&subject=${id}&limit=50`),
    ]);
    const anomalies = (an.body ? an.body.items || [] : []).map((a) => ({
      t: Date.parse(a.details?.timestamp || a.timestamp),
      v: a.details?.observed,
      lo: a.details?.expected_lower,
      hi: a.details?.expected_upper,
      message: a.message,
    })).filter((a) => Number.isFinite(a.t) && Number.isFinite(a.v));
    return { s, fc: fc.body, anomalies };
  }));
  for (const { s, fc, anomalies } of charts) {
    const figure = el("figure", { class: "fc" });
    figure.append(el("figcaption", {}, el("b", {}, s.series_id), el("br"), el("span", { class: "muted" },
      `${s.model} · MAE ${fmt(s.rolling_mae, 2)} · coverage ${pct(s.coverage, 0)} · ${fmt(s.points)} pts`)));
    if (fc) figure.append(forecastChart(fc, anomalies));
    const last = anomalies[0];
    figure.append(el("p", { class: "sub" }, last
      ? `${plural(anomalies.length, "anomaly", "anomalies")} among the latest alerts; last ${new Date(last.t).toISOString().slice(0, 16).replace("T", " ")}: observed ${fmt(last.v, 2)}, expected ${fmt(last.lo, 2)}–${fmt(last.hi, 2)}`
      : "no anomalies"));
    grid.append(figure);
  }
  panel("card-forecasts", true);
}

// ---------------------------------------------------------------- demo
// GET /v1/demo: {phase, message, event_day, backfill: {day, of}, episode, steps: [{phase, at,
// message}]} while `up --demo` runs, {phase: "off"} without a demo (the banner stays hidden).
async function pollDemo() {
  const res = await api("/v1/demo");
  const d = res.body;
  const box = $("demo");
  if (!d || d.phase === "off") {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.phase = d.phase;
  $("demo-phase").textContent = d.phase;
  $("demo-message").textContent = d.message;
  $("demo-day").textContent = `event day ${fmt(d.event_day)}`;
  const bar = $("demo-progress");
  bar.hidden = !(d.backfill && d.phase === "warming up");
  if (d.backfill) {
    bar.max = Math.max(1, d.backfill.of);
    bar.value = d.backfill.day;
  }
  const steps = clear($("demo-steps"));
  for (const st of d.steps || []) {
    steps.append(el("li", { "data-phase": st.phase, title: st.message },
      el("time", {}, clock(Date.parse(st.at))), el("b", {}, st.phase), st.message));
  }
}

// ---------------------------------------------------------------- start
async function start(key) {
  state.key = key;
  state.stopped = false;
  try {
    const first = await api(`/v1/dashboard/summary?window=${WINDOW_S}`);
    $("board").hidden = false;
    if (first.body) renderSummary(first.body);
  } catch (e) {
    if (e instanceof Unauthorized) return askForKey(e.message);
    throw e;
  }
  openStream();
  every(2000, pollAlerts);
  every(2000, pollDemo);
  every(5000, pollModels);
  every(5000, pollForecasts);
  every(10000, pollDrift);
  every(10000, pollFairness);
  every(10000, pollPerformance);
  every(1000, async () => {
    if (Date.now() - state.lastSummary > 4000) setLive(false);
  });
}

$("show-fraud").addEventListener("change", () => pollAlerts().catch(console.error));

const initial = keyFromUrl();
if (initial) start(initial);
else askForKey("");
