// Vigil web UI: the service map, the event and alert streams, and the coverage report, all read
// from the agent's own API. Plain JavaScript with no dependencies. Event data (paths, command
// lines, DNS names) is attacker-controlled, so it only ever reaches the page as text nodes and
// attribute values, never as HTML.
"use strict";

/** `?token=T` on the page URL: sent as a bearer token, or as `access_token` where a header
 *  cannot be set (EventSource). */
const TOKEN = new URLSearchParams(location.search).get("token");
/** Rows kept in the event and alert tables; older rows are dropped. */
const MAX_ROWS = 500;
const MAP_POLL_MS = 2000;
const KINDS = ["exec", "fork", "exit", "file", "syscall", "connection", "udp", "dns", "http", "drop"];
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------------------------------------
// Helpers

const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children; strings become text nodes, null/undefined are
 *  skipped (attributes too). `ns` is set for SVG. */
function make(ns, tag, attrs, children) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (typeof v === "function") e.addEventListener(k.replace(/^on/, ""), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== undefined && c !== null));
  return e;
}
const h = (tag, attrs, ...children) => make(null, tag, attrs, children);
const s = (tag, attrs, ...children) => make(SVG_NS, tag, attrs, children);

function apiFetch(path) {
  const headers = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};
  return fetch(path, { headers, cache: "no-store" });
}

/** A stream URL with its filters (empty ones left out) and the token. */
function streamUrl(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  if (TOKEN) q.set("access_token", TOKEN);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

function setStatus(sel, text, error = false) {
  const e = $(sel);
  e.textContent = text;
  e.classList.toggle("error", error);
}

/** A failed API response as one line, with a hint when the token is the problem. */
async function describe(r) {
  const body = (await r.text()).trim();
  const hint = r.status === 401 ? " (open the page with ?token=…)" : "";
  return `${r.status} ${body || r.statusText}${hint}`;
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function fmtUs(us) {
  if (us === undefined || us === null) return "–";
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

function fmtSummary(sum) {
  if (!sum || !sum.count) return "no samples";
  return `p50 ${fmtUs(sum.p50)} · p99 ${fmtUs(sum.p99)} · max ${fmtUs(sum.max)} (${sum.count})`;
}

function fmtAddr(a) {
  if (!a) return "?";
  const ip = a.ip.includes(":") ? `[${a.ip}]` : a.ip;
  return `${a.name ? a.name + "=" : ""}${ip}:${a.port}`;
}

/** `HH:MM:SS.mmm` of an RFC 3339 UTC time. */
const fmtTime = (t) => (t ? t.slice(11).replace("Z", "").slice(0, 12) : "");

const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

/** A definition list of the pairs whose value is present. */
function fields(pairs) {
  const dl = h("dl", { class: "fields" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(h("dt", {}, k), h("dd", {}, v instanceof Node ? v : String(v)));
  }
  return dl;
}

function noteHost(name) {
  if (name && !$("#host").textContent) $("#host").textContent = `host ${name}`;
}

// ---------------------------------------------------------------------------------------------
// Views: one section each, chosen by the URL fragment (#map, #events, #alerts, #coverage).

let current = null;

function route() {
  const want = location.hash.slice(1);
  const name = ["map", "events", "alerts", "coverage"].includes(want) ? want : "map";
  for (const sec of document.querySelectorAll(".view")) sec.hidden = sec.id !== `view-${name}`;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === name);
  }
  const previous = current;
  current = name;
  if (previous === "events" && name !== "events") stopEvents();
  if (name === "map") pollMap();
  if (name === "events" && !events.source && !events.paused) startEvents();
  if (name === "alerts") {
    alerts.unseen = 0;
    $("#alert-count").textContent = "";
  }
  if (name === "coverage") loadCoverage();
}

// ---------------------------------------------------------------------------------------------
// Service map

const NODE_W = 170;
const NODE_H = 40;
const COL_GAP = 120;
const ROW_GAP = 28;
const PAD = 40;

const map = { raw: null, snapshot: null, selected: null, timer: null };

/** Polls the map every 2 s while its view is shown. */
async function pollMap() {
  if (current === "map" && !document.hidden) {
    try {
      const r = await apiFetch("api/v1/map");
      if (r.ok) {
        // Redrawn only when something changed: the nodes under the pointer stay put otherwise.
        const raw = await r.text();
        if (raw !== map.raw) {
          map.raw = raw;
          map.snapshot = JSON.parse(raw);
          drawMap();
        }
        const { nodes, edges } = map.snapshot;
        setStatus(
          "#map-status",
          `${nodes.length} nodes · ${edges.length} edges · ${new Date().toLocaleTimeString()}`,
        );
      } else {
        setStatus("#map-status", await describe(r), true);
      }
    } catch (e) {
      setStatus("#map-status", `cannot reach the agent: ${e.message}`, true);
    }
  }
  // Cleared here, not on entry: a poll started while another was in flight ends the other's loop.
  clearTimeout(map.timer);
  map.timer = setTimeout(pollMap, MAP_POLL_MS);
}

/** Layered layout, clients left of their servers: a node's column is its longest path from a
 *  node that nothing connects to (cycles are broken at depth-first back edges); rows are ordered
 *  by a few barycentre sweeps to reduce crossings. Deterministic, so the map does not jump
 *  between polls. */
function layout(nodes, edges) {
  const ids = nodes.map((n) => n.id);
  const succ = new Map(ids.map((id) => [id, []]));
  const pred = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (e.source !== e.target && succ.has(e.source) && succ.has(e.target)) {
      succ.get(e.source).push(e.target);
      pred.get(e.target).push(e.source);
    }
  }
  // Reverse post-order is topological once back edges are ignored, which the `>` below does.
  const seen = new Set();
  const post = [];
  const visit = (u) => {
    seen.add(u);
    for (const v of succ.get(u)) if (!seen.has(v)) visit(v);
    post.push(u);
  };
  for (const id of ids) if (!seen.has(id)) visit(id);
  const order = post.reverse();
  const index = new Map(order.map((id, i) => [id, i]));
  const rank = new Map(ids.map((id) => [id, 0]));
  for (const u of order) {
    for (const v of succ.get(u)) {
      if (index.get(v) > index.get(u)) rank.set(v, Math.max(rank.get(v), rank.get(u) + 1));
    }
  }
  const cols = [];
  for (const id of ids) (cols[rank.get(id)] ||= []).push(id);

  // Rows as offsets from the column's centre, so columns of different heights compare.
  const row = new Map();
  const number = (col) => col.forEach((id, i) => row.set(id, i - (col.length - 1) / 2));
  cols.forEach(number);
  const barycentre = (id, nbrs, fallback) => {
    const ns = nbrs.get(id);
    return ns.length ? ns.reduce((sum, n) => sum + row.get(n), 0) / ns.length : fallback;
  };
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const ranks = [...cols.keys()];
    if (!down) ranks.reverse();
    for (const r of ranks.slice(1)) {
      const key = new Map(cols[r].map((id) => [id, barycentre(id, down ? pred : succ, row.get(id))]));
      cols[r].sort((a, b) => key.get(a) - key.get(b));
      number(cols[r]);
    }
  }

  const tallest = cols.reduce((m, c) => Math.max(m, c.length), 0);
  const at = new Map();
  cols.forEach((col, r) =>
    col.forEach((id, i) =>
      at.set(id, {
        rank: r,
        x: PAD + r * (NODE_W + COL_GAP),
        y: PAD + (i + (tallest - col.length) / 2) * (NODE_H + ROW_GAP),
      }),
    ),
  );
  return {
    at,
    width: 2 * PAD + cols.length * (NODE_W + COL_GAP) - COL_GAP + 60,
    height: 2 * PAD + tallest * (NODE_H + ROW_GAP) - ROW_GAP,
  };
}

/** A cubic Bézier from client `a` to server `b` and its midpoint. Forward edges go right side
 *  to left side; edges within a column bulge out to the right; edges back to an earlier column
 *  go left side to right side; a workload talking to itself gets a loop on top. `off` separates
 *  parallel edges (other ports, the other direction). */
function edgePath(a, b, off) {
  let p;
  if (a === b) {
    const x = a.x + NODE_W - 40 + off;
    const y = a.y;
    p = [[x, y], [x - 8, y - 38], [x + 34, y - 38], [x + 26, y]];
  } else if (b.rank > a.rank) {
    const [x1, y1, x2, y2] = [a.x + NODE_W, a.y + NODE_H / 2 + off, b.x, b.y + NODE_H / 2 + off];
    const dx = Math.max(40, (x2 - x1) / 2);
    p = [[x1, y1], [x1 + dx, y1], [x2 - dx, y2], [x2, y2]];
  } else if (b.rank === a.rank) {
    const [x, y1, y2] = [a.x + NODE_W, a.y + NODE_H / 2 + off, b.y + NODE_H / 2 + off];
    const dx = 40 + Math.abs(y2 - y1) / 8;
    p = [[x, y1], [x + dx, y1], [x + dx, y2], [x, y2]];
  } else {
    const [x1, y1, x2, y2] = [a.x, a.y + NODE_H / 2 + 8 + off, b.x + NODE_W, b.y + NODE_H / 2 + 8 + off];
    const dx = Math.max(40, (x1 - x2) / 2);
    p = [[x1, y1], [x1 - dx, y1], [x2 + dx, y2], [x2, y2]];
  }
  const f = (v) => v.toFixed(1);
  const d = `M${f(p[0][0])},${f(p[0][1])} C${p.slice(1).map(([x, y]) => `${f(x)},${f(y)}`).join(" ")}`;
  const mid = [0, 1].map((k) => (p[0][k] + 3 * p[1][k] + 3 * p[2][k] + p[3][k]) / 8);
  return { d, mid };
}

/** Traffic for the edge's thickness: bytes both ways (closed connections), or connections/s
 *  over the last minute. */
const traffic = (e, mode) =>
  mode === "rate" ? e.connections_per_sec : e.bytes_sent + e.bytes_received;

/** The larger of the failed-connect share and the HTTP error share. */
function errorShare(e) {
  const connects = e.failed / Math.max(1, e.connections + e.failed);
  const http = e.http ? e.http.errors / Math.max(1, e.http.requests) : 0;
  return Math.max(connects, http);
}

/** p99 of the HTTP latency when there is HTTP, else of the connect latency. */
const latencyUs = (e) => e.http?.latency_us?.p99 ?? e.connect_latency_us?.p99 ?? null;

/** The edge's colour class: ok, warn, bad, or none (no latency samples). */
function health(e, mode) {
  if (mode === "latency") {
    const us = latencyUs(e);
    if (us === null) return "none";
    return us < 10_000 ? "ok" : us < 100_000 ? "warn" : "bad";
  }
  const share = errorShare(e);
  return share === 0 ? "ok" : share < 0.1 ? "warn" : "bad";
}

const LEGENDS = {
  errors: [["ok", "no errors"], ["warn", "< 10 % failed"], ["bad", "≥ 10 % failed"]],
  latency: [["ok", "< 10 ms"], ["warn", "< 100 ms"], ["bad", "≥ 100 ms"], ["none", "no samples"]],
};

const edgeKey = (e) => `${e.source}\n${e.target}\n${e.port}`;

function nodeSubtitle(n) {
  if (n.pod) return `${n.namespace}/${n.pod}`;
  if (n.kind === "container" && n.container_id) return `container ${n.container_id.slice(0, 12)}`;
  if (n.kind === "external") return n.label === n.ip ? "external" : n.ip;
  return n.cgroup_id !== undefined ? `cgroup ${n.cgroup_id}` : n.kind;
}

function drawMap() {
  const snap = map.snapshot;
  const svg = $("#map");
  const widthMode = $("#map-width").value;
  const colourMode = $("#map-colour").value;
  $("#map-legend").replaceChildren(
    ...LEGENDS[colourMode].map(([cls, text]) => h("span", {}, h("i", { class: cls }), text)),
  );
  svg.replaceChildren();
  if (!snap) return;
  if (!snap.nodes.length) {
    svg.setAttribute("width", 420);
    svg.setAttribute("height", 80);
    svg.append(s("text", { x: PAD, y: 40 }, "No TCP connections seen yet."));
    renderMapDetail();
    return;
  }
  const { at, width, height } = layout(snap.nodes, snap.edges);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);

  const defs = s("defs");
  for (const cls of ["ok", "warn", "bad", "none"]) {
    defs.append(
      s("marker", { id: `arrow-${cls}`, class: cls, viewBox: "0 0 10 10", refX: 9, refY: 5,
        markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" },
        s("path", { d: "M0,0 L10,5 L0,10 z" })),
    );
  }
  const max = snap.edges.reduce((m, e) => Math.max(m, traffic(e, widthMode)), 0);
  const labels = new Map(snap.nodes.map((n) => [n.id, n.label]));
  // Edges between the same two nodes (either direction) are drawn side by side.
  const pairKey = (e) => [e.source, e.target].sort().join("\n");
  const pairs = new Map();
  for (const e of snap.edges) pairs.set(pairKey(e), (pairs.get(pairKey(e)) || 0) + 1);
  const drawn = new Map();

  const edgeLayer = s("g", { class: "edges" });
  for (const e of snap.edges) {
    const a = at.get(e.source);
    const b = at.get(e.target);
    if (!a || !b) continue;
    const k = pairKey(e);
    const i = drawn.get(k) || 0;
    drawn.set(k, i + 1);
    const { d, mid } = edgePath(a, b, (i - (pairs.get(k) - 1) / 2) * 9);
    const cls = health(e, colourMode);
    const v = traffic(e, widthMode);
    const w = 1.5 + (max > 0 ? (7 * Math.log1p(v)) / Math.log1p(max) : 0);
    edgeLayer.append(
      s("g", { class: "edge", "data-source": e.source, "data-target": e.target,
        "data-port": e.port, "data-health": cls, onclick: (ev) => select(ev, { edge: edgeKey(e) }) },
        s("title", {}, `${labels.get(e.source)} → ${labels.get(e.target)} tcp/${e.port}`),
        s("path", { class: "hit", d }),
        s("path", { class: `line ${cls}`, d, "stroke-width": w.toFixed(1), "marker-end": `url(#arrow-${cls})` }),
        s("text", { x: mid[0].toFixed(1), y: (mid[1] - 5).toFixed(1), "text-anchor": "middle" }, `:${e.port}`)),
    );
  }
  const nodeLayer = s("g", { class: "nodes" });
  for (const n of snap.nodes) {
    const p = at.get(n.id);
    nodeLayer.append(
      s("g", { class: `node ${n.kind}`, transform: `translate(${p.x},${p.y})`,
        "data-id": n.id, "data-kind": n.kind, "data-label": n.label, "data-cgroup": n.cgroup_id,
        onclick: (ev) => select(ev, { node: n.id }) },
        s("title", {}, n.id),
        s("rect", { width: NODE_W, height: NODE_H, rx: n.kind === "external" ? 18 : 5 }),
        s("text", { x: 10, y: 17 }, clip(n.label, 22)),
        s("text", { class: "sub", x: 10, y: 32 }, clip(nodeSubtitle(n), 28))),
    );
  }
  svg.append(defs, edgeLayer, nodeLayer);
  highlight();
  renderMapDetail();
}

/** Selection changes classes only, so the elements a pointer (or a test) holds stay valid. */
function select(ev, what) {
  ev.stopPropagation();
  map.selected = what;
  highlight();
  renderMapDetail();
}

function highlight() {
  const sel = map.selected || {};
  for (const g of document.querySelectorAll("#map .node")) {
    g.classList.toggle("selected", g.dataset.id === sel.node);
  }
  for (const g of document.querySelectorAll("#map .edge")) {
    g.classList.toggle("selected", edgeKey(g.dataset) === sel.edge);
  }
}

/** A link in the detail panel that selects a node or an edge (named by the same data
 *  attributes as on the map). */
function selectLink(text, what) {
  const [source, target, port] = what.edge ? what.edge.split("\n") : [];
  return h("a", { "data-id": what.node, "data-source": source, "data-target": target, "data-port": port,
    onclick: (ev) => { ev.preventDefault(); select(ev, what); } }, text);
}

function renderMapDetail() {
  const panel = $("#map-detail");
  const snap = map.snapshot;
  const sel = map.selected;
  if (!sel || !snap) {
    panel.replaceChildren(h("p", { class: "muted" }, "Click a node or an edge for details."));
    return;
  }
  const byId = new Map(snap.nodes.map((n) => [n.id, n]));
  const label = (id) => byId.get(id)?.label ?? id;
  if (sel.node) {
    const n = byId.get(sel.node);
    if (!n) {
      panel.replaceChildren(h("p", { class: "muted" }, `${sel.node} is no longer on the map.`));
      return;
    }
    const list = (edges, other) =>
      edges.length
        ? h("ul", {}, ...edges.map((e) =>
            h("li", {}, selectLink(`${label(other(e))} :${e.port}`, { edge: edgeKey(e) }),
              ` ${e.connections} conn${e.failed ? `, ${e.failed} failed` : ""}`)))
        : h("p", { class: "muted" }, "none");
    panel.replaceChildren(
      h("h2", {}, n.label),
      fields([
        ["id", n.id], ["kind", n.kind], ["cgroup id", n.cgroup_id], ["executable", n.exe],
        ["container", n.container_id], ["namespace", n.namespace], ["pod", n.pod], ["ip", n.ip],
        ["dns names", n.names.join(", ")],
      ]),
      h("h3", {}, "Connects to"),
      list(snap.edges.filter((e) => e.source === n.id), (e) => e.target),
      h("h3", {}, "Connected from"),
      list(snap.edges.filter((e) => e.target === n.id), (e) => e.source),
    );
    return;
  }
  const e = snap.edges.find((x) => edgeKey(x) === sel.edge);
  if (!e) {
    panel.replaceChildren(h("p", { class: "muted" }, "This edge is no longer on the map."));
    return;
  }
  panel.replaceChildren(
    h("h2", {}, `${label(e.source)} → ${label(e.target)}`),
    fields([
      ["client", selectLink(label(e.source), { node: e.source })],
      ["server", selectLink(label(e.target), { node: e.target })],
      ["port", `${e.protocol}/${e.port}`],
      ["connections", e.connections],
      ["per second", `${e.connections_per_sec} (last 60 s)`],
      ["failed connects", e.failed],
      ["bytes sent", `${fmtBytes(e.bytes_sent)} (client → server)`],
      ["bytes received", `${fmtBytes(e.bytes_received)} (server → client)`],
      ["retransmits", e.retransmits],
      ["connect latency", fmtSummary(e.connect_latency_us)],
      ["rtt", fmtSummary(e.rtt_us)],
      ["http requests", e.http?.requests],
      ["http errors", e.http?.errors],
      ["http latency", e.http && fmtSummary(e.http.latency_us)],
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// Tables fed by a stream: rows are rendered in batches once per frame, newest first, and at most
// MAX_ROWS are kept, so a fast stream cannot grow the page without bound.

class RowTable {
  /** `render(item)` returns a <tr>; `key(item)`, if given, drops items already shown (a
   *  reconnected alert stream replays recent alerts). */
  constructor(table, detail, render, key) {
    this.tbody = table.tBodies[0];
    this.detail = detail;
    this.render = render;
    this.key = key;
    this.keys = new Set();
    this.pending = [];
    this.scheduled = false;
    this.onflush = null;
  }

  add(item) {
    if (this.key) {
      const k = this.key(item);
      if (this.keys.has(k)) return;
      this.keys.add(k);
      item.__key = k;
    }
    this.pending.push(item);
    // Frames do not run in a hidden tab: keep only what could still be shown.
    if (this.pending.length > 2 * MAX_ROWS) this.dropKeys(this.pending.splice(0, MAX_ROWS));
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.scheduled = false;
    const batch = this.pending.slice(-MAX_ROWS);
    this.dropKeys(this.pending.slice(0, -MAX_ROWS));
    this.pending = [];
    const frag = document.createDocumentFragment();
    for (const item of batch.reverse()) {
      const tr = this.render(item);
      tr.__item = item;
      tr.addEventListener("click", () => this.show(tr));
      frag.append(tr);
    }
    this.tbody.prepend(frag);
    while (this.tbody.rows.length > MAX_ROWS) {
      this.dropKeys([this.tbody.lastElementChild.__item]);
      this.tbody.lastElementChild.remove();
    }
    if (this.onflush) this.onflush();
  }

  dropKeys(items) {
    for (const item of items) if (item.__key) this.keys.delete(item.__key);
  }

  clear() {
    this.pending = [];
    this.keys.clear();
    this.tbody.replaceChildren();
  }

  show(tr) {
    for (const r of this.tbody.querySelectorAll("tr.selected")) r.classList.remove("selected");
    tr.classList.add("selected");
    this.detail(tr.__item);
  }
}

// ---------------------------------------------------------------------------------------------
// Event stream

/** One line about what the event says, by kind. */
function eventSummary(ev) {
  const x = ev[ev.kind] || {};
  const p = ev.process || {};
  switch (ev.kind) {
    case "exec":
      return (p.args && p.args.length ? p.args.join(" ") : p.exe) || "";
    case "fork":
      return `${x.thread ? "thread" : "child"} of ${x.parent_pid}`;
    case "exit":
      return x.signal !== null && x.signal !== undefined ? `signal ${x.signal}` : `code ${x.code}`;
    case "file": {
      const second = x.new_path ? ` → ${x.new_path}` : x.target ? ` → ${x.target}` : "";
      return `${x.op} ${x.path}${second}${x.error ? ` (${x.error})` : ""}`;
    }
    case "syscall":
      return `${x.name}(${Object.entries(x.args || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")})${x.error ? ` ${x.error}` : ""}`;
    case "connection":
      return `${x.phase} ${fmtAddr(x.local)} → ${fmtAddr(x.remote)}${x.error ? ` (${x.error})` : ""}`;
    case "udp":
      return `${fmtAddr(x.local)} ⇄ ${fmtAddr(x.remote)} sent ${fmtBytes(x.bytes_sent)}, received ${fmtBytes(x.bytes_received)}`;
    case "dns":
      return `${x.query} ${x.type} → ${x.timed_out ? "timed out" : x.rcode} ${(x.answers || []).map((a) => a.data).filter(Boolean).join(" ")}`;
    case "http":
      return `${x.role} ${x.method} ${x.path} → ${x.status ?? "no response"} ${fmtUs(x.latency_us)}`;
    case "drop":
      return `${x.count} × ${x.reason} ${x.protocol || ""}`;
    default:
      return JSON.stringify(x);
  }
}

function workload(ev) {
  if (ev.pod) return `${ev.pod.namespace}/${ev.pod.name}`;
  if (ev.container) return ev.container.name || ev.container.id.slice(0, 12);
  return "";
}

const events = { source: null, paused: false, received: 0, skipped: 0, state: "not connected", error: false };

const eventRows = new RowTable(
  $("#events-table"),
  (ev) => {
    if (ev.gap) {
      $("#events-detail").replaceChildren(
        h("h2", {}, `${ev.gap} events skipped`),
        h("p", {}, "The page read the stream more slowly than events came; the agent skipped these rather than slow down. Narrow the filters to see more."));
      return;
    }
    $("#events-detail").replaceChildren(
      h("h2", {}, `${ev.kind} · ${ev.process?.comm ?? ""} (${ev.process?.pid ?? ""})`),
      h("pre", {}, JSON.stringify(ev, null, 2)));
  },
  (ev) => {
    if (ev.gap) {
      return h("tr", { class: "gap" },
        h("td", { colspan: 5 }, `— ${ev.gap} events skipped: the stream fell behind —`));
    }
    const p = ev.process || {};
    return h("tr", { "data-kind": ev.kind, "data-cgroup": ev.cgroup_id },
      h("td", {}, fmtTime(ev.time)),
      h("td", {}, ev.kind),
      h("td", { title: p.exe }, `${p.comm ?? ""} (${p.pid ?? ""})`),
      h("td", {}, workload(ev)),
      h("td", { title: eventSummary(ev) }, eventSummary(ev)));
  },
);
eventRows.onflush = () => eventsStatus();

function eventsStatus(state, error = false) {
  if (state) {
    events.state = state;
    events.error = error;
  }
  const counts = `${events.received} received${events.skipped ? `, ${events.skipped} skipped` : ""}`;
  setStatus("#events-status", `${events.state} · ${counts}`, events.error);
}

function startEvents() {
  stopEvents();
  const f = new FormData($("#events-form"));
  const url = streamUrl("api/v1/events", {
    kind: f.getAll("kind").join(","),
    container: f.get("container").trim(),
    namespace: f.get("namespace").trim(),
  });
  const es = new EventSource(url);
  events.source = es;
  eventsStatus("connecting");
  // `live` comes once the agent has subscribed this stream: from then on nothing is missed.
  es.onopen = () => eventsStatus("connected");
  es.addEventListener("live", () => eventsStatus("live"));
  es.onerror = () =>
    eventsStatus(es.readyState === EventSource.CLOSED ? "closed by the agent (check the token and filters)" : "reconnecting", true);
  es.addEventListener("event", (m) => {
    const ev = JSON.parse(m.data);
    noteHost(ev.host);
    events.received++;
    eventRows.add(ev);
  });
  es.addEventListener("gap", (m) => {
    const n = JSON.parse(m.data).skipped;
    events.skipped += n;
    eventRows.add({ gap: n });
  });
}

function clearEvents() {
  eventRows.clear();
  events.received = 0;
  events.skipped = 0;
  eventsStatus();
}

function stopEvents() {
  if (events.source) events.source.close();
  events.source = null;
}

// ---------------------------------------------------------------------------------------------
// Alerts: the stream stays open on every view, so the tab can count new alerts.

const alerts = { source: null, unseen: 0 };

const alertRows = new RowTable(
  $("#alerts-table"),
  (a) => {
    $("#alerts-detail").replaceChildren(
      h("h2", {}, a.rule),
      fields([
        ["priority", a.priority], ["time", a.time], ["host", a.hostname], ["source", a.source],
        ["event", a.event_kind && `${a.event_kind} #${a.event_id}`], ["pid", a.pid],
        ["cgroup id", a.cgroup_id], ["container", a.container?.id], ["action", a.action],
        ["tags", (a.tags || []).join(", ")],
      ]),
      h("h3", {}, "Output"),
      h("p", {}, a.output),
      h("h3", {}, "Fields"),
      fields(Object.entries(a.output_fields || {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
      h("h3", {}, "JSON"),
      h("pre", {}, JSON.stringify(a, null, 2)));
  },
  (a) =>
    h("tr", { "data-rule": a.rule, "data-priority": a.priority, "data-cgroup": a.cgroup_id },
      h("td", {}, fmtTime(a.time)),
      h("td", {}, h("span", { class: `prio ${String(a.priority).toLowerCase()}` }, a.priority)),
      h("td", {}, a.rule),
      h("td", { title: a.output }, a.output)),
  (a) => `${a.time}|${a.event_id}|${a.rule}`,
);

function startAlerts() {
  if (alerts.source) alerts.source.close();
  alertRows.clear();
  const f = new FormData($("#alerts-form"));
  const url = streamUrl("api/v1/alerts", {
    priority: f.get("priority"),
    rule: f.get("rule").trim(),
    container: f.get("container").trim(),
    namespace: f.get("namespace").trim(),
  });
  const es = new EventSource(url);
  alerts.source = es;
  setStatus("#alerts-status", "connecting");
  // `live` follows the replay of recent alerts.
  es.onopen = () => setStatus("#alerts-status", "replaying recent alerts");
  es.addEventListener("live", () => setStatus("#alerts-status", "live"));
  es.onerror = () =>
    es.readyState === EventSource.CLOSED
      ? setStatus("#alerts-status", "closed by the agent (check the token and filters)", true)
      : setStatus("#alerts-status", "reconnecting", true);
  es.addEventListener("alert", (m) => {
    const a = JSON.parse(m.data);
    noteHost(a.hostname);
    alertRows.add(a);
    if (current !== "alerts") {
      alerts.unseen++;
      $("#alert-count").textContent = String(alerts.unseen);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Coverage: what `vigil probe` finds on this node.

async function loadCoverage() {
  setStatus("#coverage-status", "probing…");
  let report;
  try {
    const r = await apiFetch("api/v1/probe");
    if (!r.ok) {
      setStatus("#coverage-status", await describe(r), true);
      return;
    }
    report = await r.json();
  } catch (e) {
    setStatus("#coverage-status", `cannot reach the agent: ${e.message}`, true);
    return;
  }
  const table = (title, checks) => {
    const ok = checks.filter((c) => c.status === "supported").length;
    return [
      h("h2", {}, `${title} · ${ok} of ${checks.length} supported`),
      h("table", { "data-section": title.toLowerCase() },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Detail"))),
        h("tbody", {}, ...checks.map((c) =>
          h("tr", { "data-status": c.status },
            h("td", {}, c.name), h("td", { class: `state ${c.status}` }, c.status), h("td", {}, c.detail))))),
    ];
  };
  // A mount is fine when present or mounted by the agent; otherwise its state says why not.
  const mounts = (report.mounts || []).map((m) => ({
    name: `${m.fs} at ${m.path}`,
    status: m.state === "present" || m.state === "mounted" ? "supported" : "unsupported",
    detail: m.state,
  }));
  $("#coverage").replaceChildren(
    h("p", {}, "Kernel ", h("b", {}, report.kernel)),
    ...table("Capabilities", report.capabilities || []),
    ...table("Sensors", report.sensors || []),
    ...table("Hooks", report.hooks || []),
    ...table("Helpers", report.helpers || []),
    ...table("Mounts", mounts),
  );
  setStatus("#coverage-status", `probed ${new Date().toLocaleTimeString()}`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function init() {
  $("#events-kinds").append(
    ...KINDS.map((k) => h("label", {}, h("input", { type: "checkbox", name: "kind", value: k }), ` ${k}`)),
  );
  $("#events-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    events.paused = false;
    $("#events-pause").textContent = "Pause";
    clearEvents();
    startEvents();
  });
  $("#events-pause").addEventListener("click", () => {
    events.paused = !events.paused;
    $("#events-pause").textContent = events.paused ? "Resume" : "Pause";
    if (events.paused) {
      stopEvents();
      eventsStatus("paused");
    } else {
      startEvents();
    }
  });
  $("#events-clear").addEventListener("click", clearEvents);
  $("#alerts-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    startAlerts();
  });
  $("#coverage-reload").addEventListener("click", loadCoverage);
  $("#map-width").addEventListener("change", drawMap);
  $("#map-colour").addEventListener("change", drawMap);
  $("#map").addEventListener("click", (ev) => select(ev, null));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && current === "map") pollMap();
  });
  window.addEventListener("hashchange", route);
  startAlerts();
  route();
}

init();
