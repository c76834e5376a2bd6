// mipvpn web view: draws /v1/view (server-sent events) as the cells with the mobile nodes
// in them (a node whose binding moves to another cell glides there, both cells flash and
// the move is listed), an SVG topology, the mobile nodes and a handover timeline.
//
// Everything shown comes from the controller's state, and much of it from peers (NAIs,
// foreign-agent names, tunnel ids): it goes into the page as TEXT only -- textContent,
// text nodes (Element.append with strings), attribute values set with setAttribute on
// fixed attribute names, and CSSOM numbers.  No innerHTML, no string-built markup, no
// inline script or style: the page's Content-Security-Policy (script-src 'self',
// require-trusted-types-for 'script') would refuse them anyway.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
let W = 900;                        // widened for many switches (layout)
const ROWS = [60, 170, 300, 430];
const GRAPH_MNS = 6;                // more mobile nodes: only the cells view shows them
let token = new URLSearchParams(location.hash.slice(1)).get("token")
  || sessionStorage.getItem("mipvpn-token") || "";
if (location.hash) history.replaceState(null, "", location.pathname);  // token off the URL

// An SVG element with attributes (values as data) and optional text content.
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// An HTML element holding ``text`` as text.
function h(tag, text, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A class name token from data, or "" when it is not one of ours (a-z and '-').
const token_class = s => (typeof s === "string" && /^[a-z][a-z-]{0,30}$/.test(s)) ? s : "";
const num = x => (typeof x === "number" && isFinite(x)) ? x : 0;

// Rows: core switches, gateways, site/access switches, hosts and mobile nodes.
function layout(s) {
  const pos = {};
  const spread = (names, y, order) => {
    names.sort((a, b) => (order(a) - order(b)) || a.localeCompare(b));
    names.forEach((n, i) => { pos[n] = { x: (i + 1) * W / (names.length + 1), y }; });
  };
  const core = s.switches.filter(w => w.role === "core").map(w => w.name);
  const edgeCount = s.switches.length - core.length;
  W = Math.max(900, 70 * (Math.max(core.length, s.gateways.length, edgeCount) + 1));
  spread(core, ROWS[0], () => 0);
  const gwCore = Object.fromEntries(s.gateways.map(g => [g.name, g.core]));
  spread(s.gateways.map(g => g.name), ROWS[1], n => (pos[gwCore[n]] || { x: 0 }).x);
  const above = {};
  for (const g of s.gateways) above[g.inside] = g.name;
  const edge = s.switches.filter(w => w.role !== "core").map(w => w.name);
  spread(edge, ROWS[2], n => (pos[above[n]] || { x: W }).x);
  return pos;
}

function drawGraph(s) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const pos = layout(s);
  svg.setAttribute("viewBox", `0 0 ${W} 520`);
  const gLinks = el("g", {}, svg), gTun = el("g", {}, svg), gNodes = el("g", {}, svg);
  const line = (a, b, cls) => {
    if (a && b) el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: cls }, gLinks);
  };
  for (const [a, b] of s.links) line(pos[a], pos[b], "link");
  for (const g of s.gateways) { line(pos[g.name], pos[g.core], "link"); line(pos[g.name], pos[g.inside], "link"); }
  // hosts under their switch; mobile nodes under their current access switch
  const under = {};
  const slot = sw => { under[sw] = (under[sw] || 0) + 1; return (under[sw] - 1) * 46 - 20; };
  for (const hst of s.hosts) {
    if (!pos[hst.switch]) continue;
    const p = { x: pos[hst.switch].x + slot(hst.switch), y: ROWS[3] };
    line(p, pos[hst.switch], "link");
    const g = el("g", { class: "host", id: "host-" + hst.name }, gNodes);
    el("circle", { cx: p.x, cy: p.y, r: 12 }, g);
    el("text", { x: p.x, y: p.y + 26, "text-anchor": "middle" }, g, `${hst.name} ${hst.ip}`);
  }
  for (const m of s.mobile_nodes.length > GRAPH_MNS ? [] : s.mobile_nodes) {
    if (!pos[m.switch]) continue;
    const p = { x: pos[m.switch].x + slot(m.switch), y: ROWS[3] };
    line(p, pos[m.switch], "link attach");
    const g = el("g", { class: "mn", id: "mn-" + m.name, "data-fa": m.foreign_agent || "",
                        "data-switch": m.switch }, gNodes);
    el("circle", { cx: p.x, cy: p.y, r: 12 }, g);
    el("text", { x: p.x, y: p.y + 26, "text-anchor": "middle" }, g,
       `${m.name} @ ${m.foreign_agent || "(not registered)"}`);
  }
  for (const w of s.switches) {
    const p = pos[w.name];
    const g = el("g", { class: "sw" + (w.connected ? "" : " down"), id: "sw-" + w.name }, gNodes);
    el("rect", { x: p.x - 28, y: p.y - 13, width: 56, height: 26, rx: 4 }, g);
    el("text", { x: p.x, y: p.y + 4, "text-anchor": "middle" }, g, w.name);
  }
  for (const gw of s.gateways) {
    const p = pos[gw.name];
    const g = el("g", { class: "gw", id: "gw-" + gw.name }, gNodes);
    el("circle", { cx: p.x, cy: p.y, r: 16, class: token_class(gw.kind) }, g);
    el("text", { x: p.x, y: p.y + 4, "text-anchor": "middle", fill: "#fff" }, g, gw.name);
    el("text", { x: p.x, y: p.y + 32, "text-anchor": "middle" }, g, gw.ip);
  }
  s.tunnels.forEach((t, i) => {
    const a = pos[t.a], b = pos[t.b];
    if (!a || !b) return;
    const lift = 50 + 18 * (i % 12);          // many tunnels: the arcs stay on the page
    const d = `M ${a.x} ${a.y} Q ${(a.x + b.x) / 2} ${Math.min(a.y, b.y) - lift} ${b.x} ${b.y}`;
    const kind = token_class(t.kind) || "other";
    const path = el("path", { d, class: `tunnel t-${kind} ${token_class(t.state)}`.trim(),
                              id: "tunnel-" + t.id, "data-kind": kind }, gTun);
    el("title", {}, path, `${t.id} (${t.kind}, ${t.state})`);
  });
}

// ------------------------------------------------------------------ the cells
// One rectangle per cell (access switch + its FA) at the layout's position, the pairs of
// neighbouring cells joined; each registered mobile node a dot in its cell.  The dots
// persist between updates, so a node whose cell changes moves by a CSS transition.

const CELL_W = 150, CELL_GAP = 36, DOT = 20, PER_ROW = 6;
const cellView = { key: "", pos: {}, dotLayer: null, trailLayer: null, cellEls: {},
                   dots: {}, last: {}, height: 0, moves: [], seen: 0, labels: true };

// Grid coordinates as given when they are whole numbers, else scaled onto a square grid.
function cellGrid(cells) {
  const whole = cells.every(c => Number.isInteger(num(c.x)) && Number.isInteger(num(c.y)));
  if (whole) return cells.map(c => [num(c.x), num(c.y)]);
  const xs = cells.map(c => num(c.x)), ys = cells.map(c => num(c.y));
  const side = Math.max(1, Math.ceil(Math.sqrt(cells.length)) - 1);
  const fit = (v, lo, hi) => hi > lo ? (v - lo) / (hi - lo) * side : 0;
  return cells.map(c => [fit(num(c.x), Math.min(...xs), Math.max(...xs)),
                         fit(num(c.y), Math.min(...ys), Math.max(...ys))]);
}

function buildCells(s) {
  const svg = document.getElementById("cells");
  svg.replaceChildren();
  const grid = cellGrid(s.cells);
  const perCell = s.mobile_nodes.length / Math.max(1, s.cells.length);
  const rows = Math.min(8, Math.max(2, Math.ceil(2.5 * perCell / PER_ROW)));
  const cellH = 44 + rows * DOT;
  const pitchX = CELL_W + CELL_GAP, pitchY = cellH + CELL_GAP;
  const domains = [...new Set(s.cells.map(c => String(c.domain)))].sort();
  cellView.pos = {}; cellView.cellEls = {}; cellView.dots = {}; cellView.rows = rows;
  cellView.labels = s.mobile_nodes.length <= 24;
  let w = 0, hgt = 0;
  s.cells.forEach((c, i) => {
    const x = CELL_GAP / 2 + grid[i][0] * pitchX, y = CELL_GAP / 2 + grid[i][1] * pitchY;
    cellView.pos[c.switch] = { x, y, h: cellH };
    w = Math.max(w, x + CELL_W + CELL_GAP / 2); hgt = Math.max(hgt, y + cellH + CELL_GAP / 2);
  });
  svg.setAttribute("viewBox", `0 0 ${Math.max(w, 300)} ${Math.max(hgt, 100)}`);
  svg.style.maxWidth = `${Math.round(1.4 * Math.max(w, 300))}px`;   // few cells: not huge
  const gEdges = el("g", {}, svg), gCells = el("g", {}, svg);
  cellView.trailLayer = el("g", {}, svg);
  cellView.dotLayer = el("g", {}, svg);
  const centre = n => cellView.pos[n] && { x: cellView.pos[n].x + CELL_W / 2,
                                            y: cellView.pos[n].y + cellView.pos[n].h / 2 };
  for (const [a, b] of s.cell_edges) {
    const p = centre(a), q = centre(b);
    if (p && q) el("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "cell-edge" }, gEdges);
  }
  for (const c of s.cells) {
    const p = cellView.pos[c.switch];
    const dom = domains.indexOf(String(c.domain)) % 8;
    const g = el("g", { class: "cell dom" + dom, id: "cell-" + c.switch }, gCells);
    el("rect", { x: p.x, y: p.y, width: CELL_W, height: p.h, rx: 8 }, g);
    el("text", { x: p.x + 8, y: p.y + 16, class: "cell-name" }, g,
       `${c.switch} · ${c.foreign_agent}`);
    el("text", { x: p.x + CELL_W - 8, y: p.y + 16, "text-anchor": "end", class: "cell-dom" },
       g, String(c.domain));
    const count = el("text", { x: p.x + CELL_W - 8, y: p.y + p.h - 6, "text-anchor": "end",
                               class: "cell-count" }, g, "");
    cellView.cellEls[c.switch] = { g, count };
  }
}

function flash(elem, cls, ms) {
  if (!elem) return;
  elem.classList.remove(cls);
  void elem.getBoundingClientRect();          // restart the CSS animation
  elem.classList.add(cls);
  setTimeout(() => elem.classList.remove(cls), ms);
}

function dotFor(m) {
  let d = cellView.dots[m.name];
  if (d) return d;
  const g = el("g", { class: "cmn", id: "cmn-" + m.name });
  el("circle", { cx: 0, cy: 0, r: 7 }, g);
  el("title", {}, g, `${m.name} (${m.nai})`);
  if (cellView.labels) el("text", { x: 0, y: 17, "text-anchor": "middle" }, g, m.name);
  d = cellView.dots[m.name] = { g, cell: null, xy: null, slot: null };
  return d;
}

function drawCells(s) {
  const key = JSON.stringify([s.cells, s.cell_edges, s.mobile_nodes.length]);
  if (key !== cellView.key) { buildCells(s); cellView.key = key; }
  // a node keeps its slot while it stays in a cell; an arrival takes the first free one
  const inCell = {}, taken = {};
  const here = m => m.cell && cellView.pos[m.cell];
  for (const m of s.mobile_nodes) {
    if (!here(m)) continue;
    (inCell[m.cell] = inCell[m.cell] || []).push(m);
    const d = dotFor(m);
    if (d.cell === m.cell && d.slot !== null) (taken[m.cell] = taken[m.cell] || new Set()).add(d.slot);
  }
  const away = [];
  for (const m of s.mobile_nodes) {
    const d = dotFor(m);
    if (!here(m)) {
      away.push(m.name);
      d.g.classList.add("away");
      d.slot = null;                        // kept: d.cell, so a return is no move
      continue;
    }
    const p = cellView.pos[m.cell];
    if (d.cell !== m.cell || d.slot === null) {
      const used = taken[m.cell] = taken[m.cell] || new Set();
      let free = 0;
      while (used.has(free)) free += 1;
      used.add(free);
      d.slot = free;
    }
    const slot = Math.min(d.slot, cellView.rows * PER_ROW - 1);
    const xy = { x: p.x + 16 + (slot % PER_ROW) * ((CELL_W - 24) / PER_ROW),
                 y: p.y + 34 + Math.floor(slot / PER_ROW) * DOT };
    const moved = d.cell !== null && d.cell !== m.cell;
    if (moved) {
      const from = d.cell, a = d.xy;
      flash(cellView.cellEls[from] && cellView.cellEls[from].g, "left", 1600);
      flash(cellView.cellEls[m.cell] && cellView.cellEls[m.cell].g, "arrived", 1600);
      flash(d.g, "moved", 2000);
      const trail = el("line", { x1: a.x, y1: a.y, x2: xy.x, y2: xy.y, class: "trail" },
                       cellView.trailLayer);
      setTimeout(() => trail.remove(), 2000);
      cellView.seen += 1;
      cellView.moves.unshift({ t: new Date(), name: m.name, from, to: m.cell,
                               fa: m.foreign_agent });
      cellView.moves.length = Math.min(cellView.moves.length, 20);
    }
    d.g.classList.remove("away");
    d.g.style.transform = `translate(${num(xy.x)}px, ${num(xy.y)}px)`;   // CSSOM numbers
    if (!d.g.parentNode) cellView.dotLayer.appendChild(d.g);
    d.cell = m.cell; d.xy = xy;
  }
  for (const [sw, c] of Object.entries(cellView.cellEls)) {
    const n = (inCell[sw] || []).length;
    c.count.textContent = n ? `${n} MN${n > 1 ? "s" : ""}` : "";
  }
  document.getElementById("unregistered").textContent =
    away.length ? `not registered: ${away.join(", ")}` : "";
  document.getElementById("movecount").textContent =
    cellView.seen ? `${cellView.seen} move${cellView.seen > 1 ? "s" : ""} seen` : "";
  document.getElementById("moves").replaceChildren(...cellView.moves.map(mv => {
    const li = h("li", `${mv.t.toLocaleTimeString()} ${mv.name}: ${mv.from} → ${mv.to}` +
                 (mv.fa ? ` (${mv.fa})` : ""));
    return li;
  }));
}

function mobileNodeRows(s) {
  return s.mobile_nodes.map(m => {
    const li = h("li", `${m.name} (${m.nai}, ${m.home_address}): ` +
                 (m.registered ? `at ${m.foreign_agent} via ${m.switch}` : "not registered"));
    li.id = "mnrow-" + m.name;
    return li;
  });
}

// One handover: "#seq NAI kind [from → ]to code N — T ms", then a bar per phase.
function handoverEntry(ho) {
  const div = h("div", undefined, "ho");
  div.id = "handover-" + num(ho.seq);
  const total = ho.phases_ms.controller_total;
  const head = h("div");
  head.append(h("b", `#${num(ho.seq)}`), ` ${ho.nai} `, h("b", String(ho.kind)),
              ` ${ho.from ? ho.from + " → " : ""}${ho.to} `);
  if (ho.accepted === null) head.append(h("i", "in progress"));
  else head.append(h("span", `code ${ho.code}`, ho.accepted ? "code" : "code denied"));
  if (typeof total === "number") head.append(` — ${total.toFixed(1)} ms`);
  div.appendChild(head);
  const max = Math.max(1, ...Object.values(ho.phases_ms).map(num));
  for (const [name, ms] of Object.entries(ho.phases_ms)) {
    if (name === "controller_total") continue;
    const row = h("div", undefined, "phase");
    const bar = h("span", undefined, "bar");
    bar.style.width = `${Math.round(200 * num(ms) / max)}px`;   // CSSOM: a number only
    row.append(h("span", name), bar, h("span", `${num(ms).toFixed(1)} ms`));
    div.appendChild(row);
  }
  return div;
}

function draw(s) {
  document.getElementById("topo-name").textContent = "— " + s.name;
  drawCells(s);
  drawGraph(s);
  document.getElementById("mnlist").replaceChildren(...mobileNodeRows(s));
  document.getElementById("timeline").replaceChildren(
    ...s.handovers.slice().reverse().map(handoverEntry));
}

function setStatus(text, cls) {
  const st = document.getElementById("status");
  st.textContent = text; st.className = cls || "";
}

function showTokenBox(shown) {
  document.getElementById("tokenbox").classList.toggle("shown", shown);
}

async function connect() {
  showTokenBox(false);
  setStatus("connecting");
  try {
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = "Bearer " + token;
    const resp = await fetch("/v1/view", { headers });
    if (resp.status === 401 || resp.status === 403) {
      setStatus("token needed", "error");
      showTokenBox(true);
      return;
    }
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    setStatus("live", "live");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i); buf = buf.slice(i + 2);
        const data = block.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
        if (data) draw(JSON.parse(data));
      }
    }
    throw new Error("stream ended");
  } catch (e) {
    setStatus("disconnected: " + e.message + " (retrying)", "error");
    setTimeout(connect, 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("tokenbtn").addEventListener("click", () => {
    token = document.getElementById("token").value.trim();
    sessionStorage.setItem("mipvpn-token", token);
    connect();
  });
  connect();
});
