"""The live page at ``/``: the browser's ``EventSource`` on ``/v1/odds-drop``, filters as form fields.

Self-contained (no external scripts or styles). Query parameters of the page URL prefill the
form (``?sport=basketball_nba&threshold=15&apiKey=...``), ``since=MS`` asks for the buffered
alerts after that time, and ``autostart=1`` connects at once.
The key is kept in the page only; it goes to the server in the stream URL (EventSource cannot
set headers), which the server's access log redacts.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PAGE_HTML"]

PAGE_HTML: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dropengine: live odds drops</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
 form { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: end; margin-bottom: 1em; }
 label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
 input, select { font: inherit; padding: 2px 4px; }
 #status { margin: .5em 0; font-size: 13px; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 tr.toward_favorite td.delta { color: #0a6; } tr.toward_dog td.delta { color: #c33; }
</style>
</head>
<body>
<h1>Live odds drops</h1>
<form id="f">
 <label>sport (key, <i>all</i>, or a,b)<input name="sport" value="all"></label>
 <label>threshold (cents)<input name="threshold" type="number" min="1" max="200" value="10"></label>
 <label>direction<select name="direction">
  <option>both</option><option>toward_favorite</option><option>toward_dog</option></select></label>
 <label>bookmakers<input name="bookmakers" placeholder="pinnacle,fanduel"></label>
 <label>markets<input name="markets" placeholder="h2h,player_points"></label>
 <label>kinds<select name="kinds"><option value="">game,prop</option><option>game</option>
  <option>prop</option></select></label>
 <label>event_id<input name="event_id"></label>
 <label>API key<input name="apiKey" type="password" autocomplete="off"></label>
 <button type="submit" id="go">Connect</button>
</form>
<div id="status">not connected</div>
<table>
 <thead><tr><th>time</th><th>sport</th><th>event</th><th>book</th><th>side</th>
  <th>prev</th><th>new</th><th>delta</th><th>direction</th></tr></thead>
 <tbody id="alerts"></tbody>
</table>
<script>
"use strict";
const form = document.getElementById("f");
const statusEl = document.getElementById("status");
const tbody = document.getElementById("alerts");
let source = null, count = 0;
const MAX_ROWS = 500;

function streamUrl() {
  const data = new FormData(form);
  const sport = (data.get("sport") || "all").trim();
  const q = new URLSearchParams();
  let path = "/v1/odds-drop/all";
  if (sport.includes(",")) { path = "/v1/odds-drop/multi"; q.set("sports", sport); }
  else if (sport && sport !== "all") { path = "/v1/odds-drop/" + encodeURIComponent(sport); }
  for (const name of ["threshold", "direction", "bookmakers", "markets", "kinds", "event_id", "apiKey"]) {
    const v = (data.get(name) || "").trim();
    if (v) q.set(name, v);
  }
  const since = new URLSearchParams(location.search).get("since");  // page URL only: replay the buffer
  if (since) q.set("since", since);
  return path + "?" + q.toString();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function show(a) {
  const tr = document.createElement("tr");
  tr.className = "alert " + a.direction;
  cell(tr, new Date(a.timestamp).toLocaleTimeString());
  cell(tr, a.sport_key);
  cell(tr, a.home_team && a.away_team ? a.away_team + " @ " + a.home_team : a.event_id);
  cell(tr, a.bookmaker);
  cell(tr, a.side);
  cell(tr, String(a.prev), "num");
  cell(tr, String(a.new), "num");
  cell(tr, (a.delta > 0 ? "+" : "") + a.delta, "num delta");
  cell(tr, a.direction);
  tbody.insertBefore(tr, tbody.firstChild);
  while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(-1);
}

function connect(ev) {
  if (ev) ev.preventDefault();
  if (source) source.close();
  count = 0;
  statusEl.textContent = "connecting...";
  source = new EventSource(streamUrl());
  source.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === "odds_drop") { count++; show(f); statusEl.textContent = "connected: " + count + " alerts"; }
    else if (f.type === "connected") statusEl.textContent = "connected (epoch " + f.epoch + "): waiting for alerts";
    else if (f.type === "reset") statusEl.textContent = "reset: " + f.reason;
  };
  source.onerror = () => {
    statusEl.textContent = source.readyState === EventSource.CLOSED
      ? "closed (check the API key and filters)" : "reconnecting...";
  };
}

form.addEventListener("submit", connect);
const given = new URLSearchParams(location.search);
for (const [k, v] of given) { if (form.elements[k]) form.elements[k].value = v; }
if (given.get("autostart") === "1") connect();
</script>
</body>
</html>
"""
