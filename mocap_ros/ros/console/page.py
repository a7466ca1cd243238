"""The console page: one HTML document, no external resources (no CDN, no fonts)."""

from __future__ import annotations

import html

HEARTBEAT_MS = 250

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
 body{margin:0;font:14px system-ui,sans-serif;background:#1d1f24;color:#e8e8e8}
 header{position:sticky;top:0;z-index:9;display:flex;gap:10px;align-items:center;
   padding:8px 12px;background:#2a2d34;border-bottom:1px solid #444}
 button{font:600 15px system-ui,sans-serif;border:0;border-radius:6px;padding:8px 16px;
   cursor:pointer;color:#fff}
 #stop{background:#d21f1f;font-size:20px;padding:10px 34px;letter-spacing:2px}
 #enable{background:#23883a} #disable{background:#666}
 #mode{font:700 18px system-ui;padding:4px 10px;border-radius:6px;background:#555}
 #mode.tracking{background:#23883a} #mode.holding,#mode.safe_pose{background:#b8860b}
 #mode.stopping{background:#c05000}
 #answer{flex:1;color:#ccc} #link{font-size:12px;color:#aaa}
 main{display:grid;grid-template-columns:minmax(300px,480px) minmax(320px,1fr);gap:10px;
   padding:10px}
 .panel{background:#26282e;border:1px solid #3a3d45;border-radius:6px;padding:6px}
 #camera{width:100%;display:block;background:#000;min-height:120px}
 #viewer{width:100%;height:calc(100vh - 100px);min-height:360px;border:0;background:#fff;
   display:block}
 table{border-collapse:collapse;width:100%} td{padding:2px 6px;border-bottom:1px solid #333}
 td:first-child{color:#aaa;width:40%} .bad{color:#ff7b7b} .good{color:#7bd88f}
 small{color:#999}
</style></head><body>
<header>
 <button id="stop" title="Esc">STOP</button>
 <button id="enable" title="space">Enable</button>
 <button id="disable">Disable</button>
 <span id="mode">-</span>
 <span id="answer">connecting...</span>
 <span id="link">-</span>
</header>
<main>
 <div class="panel"><img id="camera" alt="camera image (with the 2D skeleton)">
  <table id="status"></table>
  <small>Keys: space arms (Enable), Esc stops. Teleop is disabled when this page closes,
  is hidden, or loses its connection for more than a second while it armed teleop.</small>
 </div>
 <div class="panel"><iframe id="viewer" title="3D: robot (solid), command (ghost),
   operator"></iframe></div>
</main>
<script>
"use strict";
const HEARTBEAT_MS = __HEARTBEAT_MS__, VIEWER_PORT = __VIEWER_PORT__;
const params = new URLSearchParams(location.search);
const token = params.get("token");
const $ = (id) => document.getElementById(id);
let ws = null, lastUrl = null, connected = false;
// The 3D view under another site name when there is one (127.0.0.1 <-> localhost): the
// browser then renders it in its own process, so a slow (software) WebGL frame cannot stall
// this page's buttons and heartbeat.
const viewerHost = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}[location.hostname] ||
  location.hostname;
if (VIEWER_PORT) $("viewer").src = location.protocol + "//" + viewerHost + ":" + VIEWER_PORT +
  "/";
function send(obj) { if (ws && ws.readyState === 1) { ws.send(JSON.stringify(obj)); return true; }
  return false; }
function request(type) {
  if (type === "enable" && document.visibilityState !== "visible") return;
  if (type === "enable") send({type: "heartbeat"});
  $("answer").textContent = (send({type}) ? type + " sent..." : "not connected: " + type +
    " not sent");
}
function heartbeat() { if (document.visibilityState === "visible") send({type: "heartbeat"}); }
function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" +
    (token ? "?token=" + encodeURIComponent(token) : "");
  ws = new WebSocket(url); ws.binaryType = "blob";
  ws.onopen = () => { connected = true; $("link").textContent = "connected";
    if ($("answer").textContent === "connecting...") $("answer").textContent = "";
    heartbeat(); };
  ws.onclose = (ev) => { connected = false;
    $("link").textContent = "disconnected (" + ev.code + "), reconnecting";
    setTimeout(connect, 1000); };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") {
      const u = URL.createObjectURL(ev.data); const old = lastUrl; lastUrl = u;
      $("camera").src = u; if (old) URL.revokeObjectURL(old); return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === "state") show(m);
    else if (m.type === "answer") $("answer").textContent = m.request + ": " + m.message;
    else if (m.type === "notice" || m.type === "refused") $("answer").textContent = m.message;
  };
}
function fmt(v, d) { return (v === null || v === undefined || v === "") ? "-" :
  (typeof v === "number" ? (Number.isInteger(v) && d === undefined ? String(v) :
   v.toFixed(d === undefined ? 2 : d)) : String(v)); }
function show(s) {
  const mode = s.teleop ? (s.enabled ? s.mode : "disabled") : "no teleop";
  $("mode").textContent = mode; $("mode").className = mode;
  document.body.dataset.enabled = s.enabled ? "true" : "false";
  document.body.dataset.mode = mode;
  const rows = [
    ["teleop", s.teleop ? (s.enabled ? "ENABLED" : "disabled") + " (" + fmt(s.robot) + ")" :
      "no teleop/status"],
    ["mode / reason", fmt(s.mode) + " / " + fmt(s.reason)],
    ["pose age", s.pose_age < 0 ? "no pose yet" : fmt(s.pose_age, 3) + " s"],
    ["control rate", fmt(s.rate_hz, 1) + " Hz"],
    ["frame -> pose latency", fmt(s.latency_ms, 1) + " ms (median)"],
    ["poses/s", fmt(s.fps, 1)],
    ["pose", s.pose_valid ? "valid, confidence " + fmt(s.confidence) :
      "invalid: " + fmt(s.pose_reason)],
    ["operator lock", fmt(s.operator_state) + ", track " + fmt(s.track_id) + ", match " +
      fmt(s.operator_match)],
    ["grippers", fmt(s.grippers)],
    ["hands", fmt(s.hands)],
    ["console pages", fmt(s.pages)],
  ];
  $("status").innerHTML = "";
  for (const [k, v] of rows) { const tr = $("status").insertRow(); tr.insertCell().textContent = k;
    tr.insertCell().textContent = v; }
}
$("stop").onclick = () => request("disable");
$("disable").onclick = () => request("disable");
$("enable").onclick = () => request("enable");
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") { e.preventDefault(); request("disable"); }
  else if (e.key === " " && !e.repeat) { e.preventDefault(); request("enable"); }
});
// keys reach this page only while it has focus: take it back from the 3D view
window.addEventListener("blur", () => setTimeout(() => {
  if (document.activeElement === $("viewer")) $("stop").focus(); }, 200));
document.addEventListener("visibilitychange", heartbeat);
setInterval(heartbeat, HEARTBEAT_MS);
connect();
</script></body></html>
"""


def page_html(title: str = "mocap_ros console", viewer_port: int | None = None) -> str:
    return (_PAGE.replace("__TITLE__", html.escape(title))
            .replace("__HEARTBEAT_MS__", str(HEARTBEAT_MS))
            .replace("__VIEWER_PORT__", str(int(viewer_port or 0))))
