"""The live page at ``/``: a streaming ``fetch`` of ``/v1/odds-drop``, filters as form fields.

Self-contained (no external scripts or styles). Query parameters of the page URL prefill the
form (``?sport=basketball_nba&threshold=15&types=odds_drop,line_move&apiKey=...``), ``since=MS``
asks for the buffered alerts after that time, and ``autostart=1`` connects at once.

The three alert types share one table, each row marked with its type: a price drop shows its
prices and the move in cents; a line move (SPEC 10) its lines as ``-3 -> -3.5`` with the key
numbers it reached or crossed marked, and the points; a steam (SPEC 11) its books in the order
they moved (the leader first and marked), the lag from first to last, and each book's move.
Checkboxes choose the types (``types``); ``line_threshold`` filters line moves.

The page reads the stream with ``fetch`` rather than ``EventSource``, for two reasons: a
rejected connection shows the server's reason (``EventSource`` cannot read an error body,
so a bad key, a bad filter and a full cap all looked the same), and the key goes in the
``X-API-Key`` header instead of the URL. It parses the SSE frames itself and reconnects
with ``Last-Event-ID`` (a network error, an ended stream, a 429 or a 5xx: with backoff, or
after ``Retry-After``); a 400, 401 or 403 is shown and not retried.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PAGE_HTML"]

PAGE_HTML: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dropengine: live odds alerts</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
 form { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: end; margin-bottom: 1em; }
 label { display: flex; flex-direction: column; flex-shrink: 0; font-size: 12px; color: #555; }
 label > span { white-space: nowrap; }
 input, select { font: inherit; padding: 2px 4px; }
 #status { margin: .5em 0; font-size: 13px; }
 #status.error { color: #c33; font-weight: 600; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 tr.toward_favorite td.delta { color: #0a6; } tr.toward_dog td.delta { color: #c33; }
 td.type { font-size: 11px; font-weight: 600; text-transform: uppercase; color: #666; }
 tr.line_move td.type { color: #36c; } tr.steam td.type { color: #b60; }
 tr.steam { background: #fff8ec; }
 td.detail { white-space: normal; min-width: 24em; font-size: 12px; color: #555; }
 mark.key { background: #ffe08a; padding: 0 2px; border-radius: 2px; }
 span.key { background: #ffe08a; padding: 0 4px; border-radius: 3px; font-size: 11px; margin-right: 4px; }
 b.leader { color: #b60; }
</style>
</head>
<body>
<h1>Live odds alerts</h1>
<form id="f">
 <label><span>sport (key, <i>all</i>, or a,b)</span><input name="sport" value="all"></label>
 <label><span>price drops</span><input name="types" type="checkbox" value="odds_drop" checked></label>
 <label><span>line moves</span><input name="types" type="checkbox" value="line_move"></label>
 <label><span>steam</span><input name="types" type="checkbox" value="steam"></label>
 <label><span>threshold (cents)</span><input name="threshold" type="number" min="1" max="200" value="10"></label>
 <label><span>line threshold (points)</span><input name="line_threshold" type="number" min="0.25" max="20"
  step="any" value="0.5"></label>
 <label><span>direction</span><select name="direction">
  <option>both</option><option>toward_favorite</option><option>toward_dog</option></select></label>
 <label><span>bookmakers</span><input name="bookmakers" placeholder="pinnacle,fanduel"></label>
 <label><span>markets</span><input name="markets" placeholder="h2h,player_points"></label>
 <label><span>kinds</span><select name="kinds"><option value="">game,prop</option><option>game</option>
  <option>prop</option></select></label>
 <label><span>event_id</span><input name="event_id"></label>
 <label><span>API key</span><input name="apiKey" type="password" autocomplete="off"></label>
 <button type="submit" id="go">Connect</button>
</form>
<div id="status">not connected</div>
<table>
 <thead><tr><th>time</th><th>type</th><th>sport</th><th>event</th><th>book</th><th>market</th><th>side</th>
  <th>prev</th><th>new</th><th>move</th><th>direction</th><th>detail</th></tr></thead>
 <tbody id="alerts"></tbody>
</table>
<script>
"use strict";
const form = document.getElementById("f");
const statusEl = document.getElementById("status");
const tbody = document.getElementById("alerts");
const MAX_ROWS = 500;
const teams = new Map();  // event_id -> "away @ home", from any alert that carried them
let controller = null, retryTimer = null, lastId = null, attempt = 0, count = 0;

function setStatus(text, isError) {
  statusEl.textContent = text;
  statusEl.className = isError ? "error" : "";
}

function streamRequest() {
  const data = new FormData(form);
  const sport = (data.get("sport") || "all").trim();
  const q = new URLSearchParams();
  let path = "/v1/odds-drop/all";
  if (sport.includes(",")) { path = "/v1/odds-drop/multi"; q.set("sports", sport); }
  else if (sport && sport !== "all") { path = "/v1/odds-drop/" + encodeURIComponent(sport); }
  const types = data.getAll("types");
  if (!types.length) return { error: "choose at least one alert type" };
  // only price drops is the server's default: the URL stays as it was before there were types
  if (types.length !== 1 || types[0] !== "odds_drop") q.set("types", types.join(","));
  const names = ["threshold", "direction", "bookmakers", "markets", "kinds", "event_id"];
  if (types.includes("line_move")) names.push("line_threshold");
  for (const name of names) {
    const v = (data.get(name) || "").trim();
    if (v) q.set(name, v);
  }
  const since = new URLSearchParams(location.search).get("since");  // page URL only: replay the buffer
  if (since) q.set("since", since);
  const query = q.toString();
  return { url: path + (query ? "?" + query : ""), key: (data.get("apiKey") || "").trim() };
}

function price(p) {  // American odds keep their sign: +120, -110
  return typeof p === "number" && p > 0 ? "+" + p : String(p);
}

function signed(x) {  // a move: +0.5, -10
  return (x > 0 ? "+" : "") + x;
}

function lineText(v, side) {  // a spread keeps its sign (+3.5, -3); a total or prop line is a plain number
  return String(side).startsWith("spread") && v > 0 ? "+" + v : String(v);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function add(parent, tag, text, cls) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (cls) el.className = cls;
  parent.appendChild(el);
  return el;
}

function lag(ms) {  // a steam's span from its first book to its last
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (Math.round(ms / 100) / 10) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}

function isKey(v, keys) {
  return (keys || []).some(k => Math.abs(Math.abs(v) - k) < 1e-9);
}

function lineMove(td, side, prev, next, keys) {  // "-3 -> -3.5", a line on a key number marked
  for (const [i, v] of [prev, next].entries()) {
    if (i) td.appendChild(document.createTextNode(" -> "));
    if (isKey(v, keys)) add(td, "mark", lineText(v, side), "key");
    else td.appendChild(document.createTextNode(lineText(v, side)));
  }
}

function bookMove(b) {  // one book's move inside a steam
  if (b.type === "line_move") {
    return b.bookmaker + " " + lineText(b.prev_line, b.side) + " -> " + lineText(b.new_line, b.side);
  }
  return b.bookmaker + " " + price(b.prev) + " -> " + price(b.new);
}

function eventLabel(a) {
  if (a.home_team && a.away_team) teams.set(a.event_id, a.away_team + " @ " + a.home_team);
  return teams.get(a.event_id) || a.event_id;
}

function marketLabel(a) {
  if (a.kind === "prop") return [a.player, a.market || a.market_key].filter(Boolean).join(" \\u00b7 ");
  return a.market_key || "";
}

function sideLabel(a) {
  if (a.kind === "prop") {  // side is market:player:outcome[@line]; the market and player have their column
    const outcome = String(a.side).split(":").pop().split("@")[0];
    return a.line != null ? outcome + " " + a.line : outcome;
  }
  return a.line != null ? a.side + " " + (a.line > 0 ? "+" + a.line : a.line) : a.side;
}

const TYPE_LABELS = { odds_drop: "drop", line_move: "line", steam: "steam" };

function show(a) {
  const tr = document.createElement("tr");
  tr.className = "alert " + a.type + " " + a.direction;
  cell(tr, new Date(a.timestamp).toLocaleTimeString());
  cell(tr, TYPE_LABELS[a.type], "type");
  cell(tr, a.sport_key);
  cell(tr, eventLabel(a));
  if (a.type === "steam") {
    cell(tr, a.books.length + " books");
    cell(tr, marketLabel(a));
    cell(tr, sideLabel(a));
    const order = cell(tr, "");  // the books in the order they moved, the leader first
    order.colSpan = 2;
    for (const [i, b] of a.books.entries()) {
      if (i) order.appendChild(document.createTextNode(" \u2192 "));
      if (i === 0) add(order, "b", b.bookmaker, "leader");
      else order.appendChild(document.createTextNode(b.bookmaker));
    }
    cell(tr, "lag " + lag(a.lag_ms), "num");
    cell(tr, a.direction);
    cell(tr, "leader " + a.leader + ": " + a.books.map(bookMove).join(" \u00b7 "), "detail");
  } else if (a.type === "line_move") {
    cell(tr, a.bookmaker);
    cell(tr, marketLabel(a));
    cell(tr, sideLabel(a));
    const moved = cell(tr, "", "num");
    moved.colSpan = 2;
    lineMove(moved, a.side, a.prev_line, a.new_line, a.key_numbers);
    cell(tr, signed(a.points), "num delta");
    cell(tr, a.direction);
    const detail = cell(tr, "", "detail");
    for (const k of a.key_numbers || []) add(detail, "span", "key " + k, "key");
    if (a.prev_price != null || a.new_price != null) {
      detail.appendChild(document.createTextNode("price " + (a.prev_price != null ? price(a.prev_price) : "none")
        + " -> " + (a.new_price != null ? price(a.new_price) : "none")));
    }
  } else {
    cell(tr, a.bookmaker);
    cell(tr, marketLabel(a));
    cell(tr, sideLabel(a));
    cell(tr, price(a.prev), "num");
    cell(tr, price(a.new), "num");
    cell(tr, signed(a.delta), "num delta");
    cell(tr, a.direction);
    cell(tr, "", "detail");
  }
  tbody.insertBefore(tr, tbody.firstChild);
  while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(-1);
}

function frame(data) {
  const f = JSON.parse(data);
  if (f.type in TYPE_LABELS) { count++; show(f); setStatus("connected: " + count + " alerts"); }
  else if (f.type === "connected") setStatus("connected (epoch " + f.epoch + "): waiting for alerts");
  else if (f.type === "reset") setStatus("reset: " + f.reason);
}

function reason(status, body) {  // the server's JSON error body, in words
  if (!body || typeof body !== "object") return "HTTP " + status;
  if (body.parameter) {
    return "HTTP " + status + ": " + body.parameter + ": " + body.message
      + (body.accepted ? " (accepted: " + body.accepted + ")" : "");
  }
  return "HTTP " + status + ": " + (body.error || body.message || JSON.stringify(body));
}

// fetch, not EventSource: EventSource cannot read an error body (why a connection was refused)
// nor set a header (the key would be in the URL)
async function readEvents(body, signal) {  // Server-Sent Events, parsed by hand
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", data = [], id = null;
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\\r\\n|\\r|\\n/)) >= 0) {
      if (nl === buffer.length - 1 && buffer.endsWith("\\r")) break;  // maybe the first half of \\r\\n
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\\r\\n", nl) ? 2 : 1));
      if (line === "") {
        if (id !== null) lastId = id;
        if (data.length) frame(data.join("\\n"));
        data = []; id = null;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "data") data.push(val);
      else if (field === "id") id = val;
    }
  }
}

function retry(why, after) {
  const wait = after != null && /^[0-9]+$/.test(after) ? Number(after) : Math.min(30, 2 ** attempt);
  attempt++;
  setStatus("reconnecting in " + wait + " s (" + why + ")", true);
  retryTimer = setTimeout(run, wait * 1000);
}

async function run() {
  const mine = new AbortController();
  controller = mine;
  const { url, key, error } = streamRequest();
  if (error) { setStatus(error, true); return; }
  const headers = { "Accept": "text/event-stream" };
  if (key) headers["X-API-Key"] = key;
  if (lastId) headers["Last-Event-ID"] = lastId;
  setStatus("connecting...");
  let resp;
  try {
    resp = await fetch(url, { headers, signal: mine.signal, cache: "no-store" });
  } catch (e) {
    if (!mine.signal.aborted) retry("network error");
    return;
  }
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON: the status says enough */ }
    const why = reason(resp.status, body);
    if (resp.status === 429 || resp.status >= 500) retry(why, resp.headers.get("Retry-After"));
    else setStatus("rejected: " + why, true);  // a bad key or filter: retrying cannot help
    return;
  }
  attempt = 0;
  try { await readEvents(resp.body, mine.signal); } catch (e) { /* cut: reconnect below */ }
  if (!mine.signal.aborted) retry("the stream ended");
}

function connect(ev) {
  if (ev) ev.preventDefault();
  if (controller) controller.abort();
  clearTimeout(retryTimer);
  count = 0; lastId = null; attempt = 0;
  tbody.textContent = "";  // a new connection (new filters): its own alerts only, none twice
  run();
}

form.addEventListener("submit", connect);
const given = new URLSearchParams(location.search);
for (const [k, v] of given) {
  if (k === "types") {  // checkboxes: the listed types checked, the others not
    const wanted = v.split(",").map(t => t.trim());
    for (const box of form.querySelectorAll('input[name="types"]')) box.checked = wanted.includes(box.value);
  } else if (form.elements[k]) form.elements[k].value = v;
}
if (given.get("autostart") === "1") connect();
</script>
</body>
</html>
"""
