"""The live page: a canvas that draws the frames off the websocket, the audio played in step (file mode) or taken
from the microphone (mic mode), and the measured latency and frame rate.

In file mode each frame message carries its own 40 ms of audio: the page schedules that audio on a WebAudio
clock a little ahead (``JITTER_S``, to absorb uneven arrival) and draws the frame when its audio starts, so
picture and sound stay in step whatever the network does. In mic mode the page resamples the microphone to
16 kHz, sends int16 chunks of 40 ms, and draws each frame on arrival.

At the stream's end the page sends its counts back (``{"type": "stats"}``): frames received, in order or not,
the rate it received them at, and the latency (the server's figure, and in mic mode the round trip it measured
itself) — the server's ``/stats`` shows them, which is how the browser test reads them. ``?autostart=file``
starts the server's file on load, ``?autostart=mic&seconds=N`` the microphone for N seconds (the tests use them,
the second with Chromium's fake microphone).
"""

from __future__ import annotations

import html
import json

JITTER_S = 0.12

_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>talklib live: __NAME__</title>
<style>
body{font-family:sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
canvas{width:384px;height:384px;image-rendering:auto;background:#eee;border:1px solid #ccc}
button{font-size:1em;margin-right:.5em;padding:.4em .8em}
table{border-collapse:collapse;margin-top:1em}td{padding:2px 10px;border-bottom:1px solid #eee}
#error{color:#cf222e;font-weight:bold}
</style></head><body>
<h1>talklib live</h1>
<p>checkpoint <code>__NAME__</code> · look-ahead __LOOKAHEAD__ ms · 25 frames/s</p>
<p><button id="file" __FILE_DISABLED__>play the server's audio</button><button id="mic">use my microphone</button>
<button id="stop" disabled>stop</button></p>
<canvas id="view" width="256" height="256"></canvas>
<table>
<tr><td>state</td><td id="state">idle</td></tr>
<tr><td>frames</td><td id="frames">0</td></tr>
<tr><td>frames per second (received)</td><td id="fps">–</td></tr>
<tr><td>latency, audio in → frame on the socket (server)</td><td id="latency">–</td></tr>
<tr><td>round trip, audio sent → frame drawn (mic mode)</td><td id="roundtrip">–</td></tr>
<tr><td>frames in order</td><td id="order">–</td></tr>
</table>
<p id="error"></p>
<script>
"use strict";
const JITTER = __JITTER__;
const $ = (id) => document.getElementById(id);
const view = $("view"), ctx2d = view.getContext("2d");
let ws = null, audioCtx = null, mode = null, micNode = null, micStream = null;
let count = 0, last = -1, inOrder = true, lat = [], rtt = [], firstAt = 0, lastAt = 0, playAt = 0;
const sentAt = new Map();   // mic mode: stream sample count -> time sent

function stats() {
  const secs = (lastAt - firstAt) / 1000;
  const med = (a) => a.length ? a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)] : null;
  const p95 = (a) => a.length ? a.slice().sort((x, y) => x - y)[Math.floor(a.length * 0.95)] : null;
  return {frames: count, in_order: inOrder, fps: count > 1 && secs > 0 ? (count - 1) / secs : null,
          latency_ms_median: med(lat), latency_ms_p95: p95(lat), roundtrip_ms_median: med(rtt), mode: mode};
}
function show() {
  const s = stats();
  $("frames").textContent = s.frames;
  $("fps").textContent = s.fps === null ? "–" : s.fps.toFixed(1);
  $("latency").textContent = s.latency_ms_median === null ? "–" :
      `${s.latency_ms_median.toFixed(0)} ms median, ${s.latency_ms_p95.toFixed(0)} ms 95th percentile`;
  $("roundtrip").textContent = s.roundtrip_ms_median === null ? "–" : `${s.roundtrip_ms_median.toFixed(0)} ms median`;
  $("order").textContent = count ? (inOrder ? "yes" : "NO") : "–";
}
function draw(bitmap) { ctx2d.drawImage(bitmap, 0, 0, view.width, view.height); }

async function onFrame(buf) {
  const dv = new DataView(buf), n = dv.getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const jpeg = new Blob([new Uint8Array(buf, 4 + n, head.jpeg)], {type: "image/jpeg"});
  const now = performance.now();
  if (count === 0) firstAt = now;
  lastAt = now; count += 1;
  if (head.frame !== last + 1) inOrder = false;
  last = head.frame;
  lat.push(head.latency_ms);
  const bitmap = await createImageBitmap(jpeg);
  if (mode === "file" && head.audio > 0 && audioCtx && audioCtx.state === "running") {
    const pcm = new Int16Array(buf.slice(4 + n + head.jpeg, 4 + n + head.jpeg + head.audio));
    const ab = audioCtx.createBuffer(1, pcm.length, 16000), ch = ab.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = audioCtx.createBufferSource(); src.buffer = ab; src.connect(audioCtx.destination);
    playAt = Math.max(playAt, audioCtx.currentTime + JITTER);
    src.start(playAt);
    setTimeout(() => draw(bitmap), Math.max(0, (playAt - audioCtx.currentTime) * 1000));
    playAt += ab.duration;
  } else {
    draw(bitmap);
    if (mode === "mic") {
      const need = (head.frame + 1) * 640;
      for (const [k, t] of sentAt) { if (k >= need) { rtt.push(performance.now() - t); break; } }
      for (const k of [...sentAt.keys()]) if (k < need) sentAt.delete(k);
    }
  }
  show();
}

function start(m) {
  mode = m; count = 0; last = -1; inOrder = true; lat = []; rtt = []; playAt = 0;
  $("error").textContent = ""; $("state").textContent = "connecting";
  try { audioCtx = new AudioContext(); audioCtx.resume(); } catch (e) { audioCtx = null; }
  ws = new WebSocket(`ws://${location.host}/stream`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({mode: m}));
  ws.onmessage = async (ev) => {
    if (typeof ev.data !== "string") { await onFrame(ev.data); return; }
    const msg = JSON.parse(ev.data);
    if (msg.type === "ready") { $("state").textContent = `streaming (${msg.mode})`; if (m === "mic") await startMic(); }
    else if (msg.type === "end") { $("state").textContent = `ended: ${msg.frames} frames`; report(); }
    else if (msg.type === "error") { $("error").textContent = msg.message; $("state").textContent = "refused"; }
  };
  ws.onclose = () => { stopMic(); $("stop").disabled = true; };
  $("stop").disabled = false;
}
function report() {
  if (ws && ws.readyState === 1) ws.send(JSON.stringify(Object.assign({type: "stats"}, stats())));
  document.documentElement.setAttribute("data-live-stats", JSON.stringify(stats()));
}

async function startMic() {
  micStream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1}});
  const src = audioCtx.createMediaStreamSource(micStream);
  const proc = audioCtx.createScriptProcessor(2048, 1, 1);
  const ratio = audioCtx.sampleRate / 16000;
  let carry = new Float32Array(0), pos = 0, sent = 0;
  proc.onaudioprocess = (e) => {
    const x = e.inputBuffer.getChannelData(0), all = new Float32Array(carry.length + x.length);
    all.set(carry); all.set(x, carry.length);
    const out = [];
    for (; pos + ratio <= all.length; pos += ratio) out.push(all[Math.floor(pos)]);
    const used = Math.floor(pos); carry = all.slice(used); pos -= used;
    const pcm = new Int16Array(out.length);
    for (let i = 0; i < out.length; i++) pcm[i] = Math.max(-1, Math.min(1, out[i])) * 32767;
    if (ws && ws.readyState === 1 && pcm.length) { ws.send(pcm.buffer); sent += pcm.length; sentAt.set(sent, performance.now()); }
  };
  src.connect(proc); proc.connect(audioCtx.destination); micNode = proc;
}
function stopMic() {
  if (micNode) { micNode.disconnect(); micNode = null; }
  if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
}
$("file").onclick = () => start("file");
$("mic").onclick = () => start("mic");
$("stop").onclick = () => { if (ws && mode === "mic") ws.send(JSON.stringify({type: "end"})); else if (ws) ws.close(); };
const query = new URLSearchParams(location.search);
if (query.get("autostart") === "file") start("file");
if (query.get("autostart") === "mic") {        // ?autostart=mic&seconds=N: N seconds of microphone, then end
  start("mic");
  setTimeout(() => { if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: "end"})); },
             1000 * Number(query.get("seconds") || 5));
}
</script></body></html>
"""


def page_html(has_file: bool, name: str, lookahead_ms: float) -> str:
    """The page, filled in for this server."""
    return (_PAGE.replace("__NAME__", html.escape(name)).replace("__LOOKAHEAD__", f"{lookahead_ms:.0f}")
            .replace("__JITTER__", json.dumps(JITTER_S)).replace("__FILE_DISABLED__", "" if has_file else "disabled"))
