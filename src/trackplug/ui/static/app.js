// trackplug ui: plain JavaScript over the dashboard's GET endpoints, uPlot for charts.
// The page's state lives in the URL's hash (#view=runs&runs=a,b&key=loss&x=step&log=0),
// so a chart can be linked or reloaded. Data only ever reaches the DOM as textContent.
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
const LIVE_MS = 2000;

const state = {
  view: "runs", runs: [], keys: [], selected: [], key: null, x: "step", log: false,
  sort: { column: "id", dir: 1 }, filter: "", live: true,
};
// run id -> {step: [], time: [], value: []}, in history order (values: numbers or "NaN"/"inf"/"-inf")
const series = new Map();
let chart = null;
let drawing = 0;
let polling = false;
// For tests and benchmarks: what the page shows, and when the chart was last drawn.
window.trackplug = { state, series, get chart() { return chart; }, drawnAt: null, draws: 0, polls: 0 };

const $ = (id) => document.getElementById(id);

async function getJSON(path, params = {}) {
  const url = new URL(path, location.href);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

function setStatus(text) { $("status").textContent = text; }

function asNumber(value) {
  if (typeof value === "number") return value;
  if (value === "inf") return Infinity;
  if (value === "-inf") return -Infinity;
  if (value === "NaN") return NaN;
  return null;
}

function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return Number(value.toPrecision(6)).toString();
}

function formatTime(ms) { return ms == null ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19); }

// -- the hash ------------------------------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.view = params.get("view") || "runs";
  state.selected = (params.get("runs") || "").split(",").filter(Boolean);
  state.key = params.get("key") || null;
  state.x = params.get("x") === "time" ? "time" : "step";
  state.log = params.get("log") === "1";
}

function writeHash() {
  const params = new URLSearchParams();
  params.set("view", state.view);
  if (state.selected.length) params.set("runs", state.selected.join(","));
  if (state.key) params.set("key", state.key);
  params.set("x", state.x);
  params.set("log", state.log ? "1" : "0");
  history.replaceState(null, "", "#" + params.toString());
}

// -- views ---------------------------------------------------------------------------------

function showView(view) {
  state.view = view;
  for (const name of ["runs", "best", "predictions"]) $(`view-${name}`).hidden = name !== view;
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.view === view);
  }
  writeHash();
  if (view === "best") loadBest();
  if (view === "predictions") loadPredictions();
}

// -- the runs table ------------------------------------------------------------------------

function runText(run) {
  return [run.id, run.name, run.status, paramsText(run.params), paramsText(run.tags)].join(" ").toLowerCase();
}

function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

function columns() {
  const fixed = [
    { id: "id", label: "run", get: (r) => r.id },
    { id: "name", label: "name", get: (r) => r.name },
    { id: "status", label: "status", get: (r) => r.status },
    { id: "start", label: "start", get: (r) => r.start, show: formatTime },
    { id: "params", label: "params", get: (r) => paramsText(r.params) },
    { id: "perf", label: "perf", get: (r) => (r.perf ? `${r.perf.metric} = ${formatValue(r.perf.value)}` : "") },
  ];
  const metrics = state.keys.map((key) => ({
    id: `metric:${key}`, label: key, numeric: true, get: (r) => r.metrics[key],
  }));
  return [...fixed, ...metrics];
}

function compare(a, b, numeric) {
  const missing = (v) => v === null || v === undefined || v === "" || (numeric && Number.isNaN(asNumber(v)));
  if (missing(a) || missing(b)) return missing(a) - missing(b); // missing last, either way
  if (numeric) return asNumber(a) - asNumber(b) || 0;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function visibleRuns() {
  const filter = state.filter.toLowerCase();
  const shown = state.runs.filter((run) => !filter || runText(run).includes(filter));
  const column = columns().find((c) => c.id === state.sort.column) || columns()[0];
  return shown.sort((a, b) => {
    const order = compare(column.get(a), column.get(b), column.numeric);
    const missingFirst = order !== 0 && (column.get(a) == null || column.get(b) == null);
    return (missingFirst ? order : order * state.sort.dir) || (a.id < b.id ? -1 : 1);
  });
}

function renderRuns() {
  const table = $("runs");
  const head = document.createElement("tr");
  head.appendChild(document.createElement("th")).textContent = "chart";
  for (const column of columns()) {
    const th = head.appendChild(document.createElement("th"));
    th.textContent = column.label;
    th.dataset.column = column.id;
    if (state.sort.column === column.id) th.classList.add(state.sort.dir > 0 ? "sorted-asc" : "sorted-desc");
    th.addEventListener("click", () => {
      state.sort = { column: column.id, dir: state.sort.column === column.id ? -state.sort.dir : column.numeric ? -1 : 1 };
      renderRuns();
    });
  }
  table.tHead.replaceChildren(head);
  const rows = visibleRuns();
  const body = [];
  for (const run of rows) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    tr.classList.toggle("selected", state.selected.includes(run.id));
    const box = tr.appendChild(document.createElement("td")).appendChild(document.createElement("input"));
    box.type = "checkbox";
    box.checked = state.selected.includes(run.id);
    box.title = "overlay this run on the chart";
    box.addEventListener("click", (event) => { event.stopPropagation(); toggleRun(run.id, box.checked); });
    for (const column of columns()) {
      const td = tr.appendChild(document.createElement("td"));
      const value = column.get(run);
      td.textContent = column.show ? column.show(value) : formatValue(value);
      if (column.numeric) td.classList.add("num");
      if (column.id === "status" && value) td.classList.add(`status-${value}`);
    }
    tr.addEventListener("click", () => selectOnly(run.id));
    body.push(tr);
  }
  table.tBodies[0].replaceChildren(...body);
  $("count").textContent = `${rows.length} of ${state.runs.length} runs`;
}

async function loadRuns() {
  const body = await getJSON("api/runs");
  $("store").textContent = body.url;
  state.runs = body.runs;
  state.keys = body.keys;
  renderRuns();
  renderMetricChoices();
  renderBestChoices();
}

function selectOnly(id) {
  state.selected = [id];
  chooseKey();
  redraw();
}

function toggleRun(id, on) {
  state.selected = on ? [...new Set([...state.selected, id])] : state.selected.filter((r) => r !== id);
  chooseKey();
  redraw();
}

// -- the chart -----------------------------------------------------------------------------

function keysOfSelected() {
  const keys = new Set();
  for (const run of state.runs) if (state.selected.includes(run.id)) Object.keys(run.metrics).forEach((k) => keys.add(k));
  return [...keys].sort();
}

// The key a perf record ranks by: log_metrics(..., perf_metric="f1") stores valid_f1 (else train_f1).
function perfKey(run, keys) {
  if (!run || !run.perf) return null;
  const metric = run.perf.metric;
  return [metric, `valid_${metric}`, `train_${metric}`].find((key) => keys.includes(key)) || null;
}

function chooseKey() {
  const keys = keysOfSelected();
  if (state.key && keys.includes(state.key)) return;
  const first = state.runs.find((run) => run.id === state.selected[0]);
  state.key = perfKey(first, keys) || keys[0] || null;
}

function renderMetricChoices() {
  const select = $("metric");
  const keys = keysOfSelected();
  select.replaceChildren(...keys.map((key) => new Option(key, key, false, key === state.key)));
}

async function redraw() {
  writeHash();
  renderRuns();
  renderMetricChoices();
  const ticket = ++drawing;
  const runs = [...state.selected];
  const key = state.key;
  if (!key || !runs.length) { drawChart([], key); return; }
  setStatus("loading…");
  const width = Math.max(400, $("chart").clientWidth);
  try {
    const answers = await Promise.all(runs.map((id) =>
      getJSON("api/history", { resource: id, key, max_points: String(2 * width) })));
    if (ticket !== drawing) return; // a newer choice superseded this one
    series.clear();
    runs.forEach((id, i) => series.set(id, answers[i]));
    drawChart(runs, key);
    setStatus("");
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
}

function xOf(points) {
  // Points all logged at one step (no step given): by time, or they would stack at one x.
  const steps = new Set(points.step);
  return state.x === "time" || (steps.size === 1 && points.step.length > 1) ? "time" : "step";
}

function table(points, x) {
  const xs = x === "time" ? points.time.map((t) => t / 1000) : points.step;
  const ys = points.value.map((v) => {
    const n = asNumber(v);
    return n === null || !Number.isFinite(n) || (state.log && n <= 0) ? null : n;
  });
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b); // time may go back
  return [order.map((i) => xs[i]), order.map((i) => ys[i])];
}

function chartData(runs, x) {
  const tables = runs.map((id) => table(series.get(id), x));
  return tables.length === 1 ? tables[0] : uPlot.join(tables);
}

function drawChart(runs, key) {
  const box = $("chart");
  if (chart) { chart.destroy(); chart = null; }
  box.replaceChildren();
  const total = runs.reduce((n, id) => n + series.get(id).step.length, 0);
  if (!runs.length) { $("chart-note").textContent = "no run chosen"; return; }
  const x = runs.some((id) => xOf(series.get(id)) === "time") ? "time" : "step";
  $("chart-note").textContent = `${runs.length} run(s), ${total} points drawn` + (x !== state.x ? " (one step only: by time)" : "");
  const opts = {
    width: Math.max(400, box.clientWidth - 2),
    height: 420,
    title: key,
    scales: { x: { time: x === "time" }, y: { distr: state.log ? 3 : 1 } },
    axes: [{ label: x === "time" ? "time" : "step" }, {}],
    series: [
      { label: x },
      ...runs.map((id, i) => ({ label: id, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false } })),
    ],
  };
  chart = new uPlot(opts, chartData(runs, x), box);
  window.trackplug.draws += 1;
  window.trackplug.drawnAt = performance.now();
  document.body.dataset.chartSeries = String(runs.length);
  document.body.dataset.chartPoints = String(total);
}

// -- live refresh: only the new points -----------------------------------------------------

async function poll() {
  if (polling || !state.live || state.view !== "runs") return;
  polling = true;
  try {
    await loadRuns();
    if (!chart || !state.key) return;
    let changed = false;
    const ended = new Set(state.runs.filter((run) => run.status && run.status !== "running").map((run) => run.id));
    for (const id of state.selected) {
      const points = series.get(id);
      if (!points || !points.step.length || ended.has(id)) continue; // an ended run logs no more
      const n = points.step.length;
      const last = [points.step[n - 1], points.time[n - 1]];
      const fresh = await getJSON("api/history", {
        resource: id, key: state.key, after_step: String(last[0]), after_time: String(last[1]),
      });
      // The answer starts at the last (step, time) this page has: replace from there.
      let cut = n;
      while (cut && (points.step[cut - 1] > last[0] || (points.step[cut - 1] === last[0] && points.time[cut - 1] >= last[1]))) cut -= 1;
      if (fresh.step.length === n - cut) continue;
      for (const column of ["step", "time", "value"]) points[column] = points[column].slice(0, cut).concat(fresh[column]);
      changed = true;
    }
    if (changed && chart) {
      const runs = [...state.selected];
      const x = runs.some((id) => xOf(series.get(id)) === "time") ? "time" : "step";
      chart.setData(chartData(runs, x));
      const total = runs.reduce((n, id) => n + series.get(id).step.length, 0);
      document.body.dataset.chartPoints = String(total);
      $("chart-note").textContent = `${runs.length} run(s), ${total} points drawn (live)`;
    }
    window.trackplug.polls += 1;
    setStatus("");
  } catch (error) {
    setStatus(`error: ${error.message}`);
  } finally {
    polling = false;
  }
}

// -- leaderboard and predictions -----------------------------------------------------------

function renderBestChoices() {
  const select = $("best-metric");
  const ranked = state.runs.map((run) => perfKey(run, state.keys)).find(Boolean);
  const current = select.value || ranked || state.keys[0];
  select.replaceChildren(...state.keys.map((key) => new Option(key, key, false, key === current)));
}

async function loadBest() {
  const key = $("best-metric").value;
  if (!key) return;
  try {
    const body = await getJSON("api/best", { key, order: $("best-order").value, limit: "100" });
    const byId = new Map(state.runs.map((run) => [run.id, run]));
    const rows = body.ranking.map((entry, i) => {
      const run = byId.get(entry.id) || {};
      const tr = document.createElement("tr");
      tr.dataset.run = entry.id;
      for (const text of [i + 1, entry.id, run.name, run.status, formatValue(entry.value)]) {
        tr.appendChild(document.createElement("td")).textContent = text == null ? "" : String(text);
      }
      tr.lastChild.classList.add("num");
      tr.addEventListener("click", () => { showView("runs"); selectOnly(entry.id); });
      return tr;
    });
    $("leaderboard").tBodies[0].replaceChildren(...rows);
    setStatus("");
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
}

async function loadPredictions() {
  try {
    const body = await getJSON("api/predictions");
    const keys = [...new Set(body.jobs.flatMap((job) => Object.keys(job.metrics)))].sort();
    const head = document.createElement("tr");
    for (const label of ["job", ...keys]) head.appendChild(document.createElement("th")).textContent = label;
    $("predictions").tHead.replaceChildren(head);
    $("predictions").tBodies[0].replaceChildren(...body.jobs.map((job) => {
      const tr = document.createElement("tr");
      tr.dataset.run = job.id;
      tr.appendChild(document.createElement("td")).textContent = job.id;
      for (const key of keys) {
        const td = tr.appendChild(document.createElement("td"));
        td.textContent = formatValue(job.metrics[key]);
        td.classList.add("num");
      }
      return tr;
    }));
    setStatus("");
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
}

// -- start ---------------------------------------------------------------------------------

async function start() {
  readHash();
  $("xaxis").value = state.x;
  $("logscale").checked = state.log;
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showView(button.dataset.view));
  $("filter").addEventListener("input", (event) => { state.filter = event.target.value; renderRuns(); });
  $("metric").addEventListener("change", (event) => { state.key = event.target.value; redraw(); });
  $("xaxis").addEventListener("change", (event) => { state.x = event.target.value; redraw(); });
  $("logscale").addEventListener("change", (event) => { state.log = event.target.checked; redraw(); });
  $("live").addEventListener("change", (event) => { state.live = event.target.checked; });
  $("best-metric").addEventListener("change", loadBest);
  $("best-order").addEventListener("change", loadBest);
  try {
    const runs = loadRuns();
    if (state.selected.length && state.key) await redraw(); // a linked chart: fetch it at once
    await runs;
    showView(state.view);
    if (!chart) redraw();
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
  setInterval(poll, LIVE_MS);
}

start();
