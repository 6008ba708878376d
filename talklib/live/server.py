"""The live server: one page, one websocket, any number of clients (tornado, which Jupyter already brings).

    GET  /         the page (``talklib.live.page``)
    GET  /stats    what the pages reported at their stream's end, and the server's own counts (JSON)
    WS   /stream   one stream per connection

**The socket's protocol.** The client's first message is text, JSON: ``{"mode": "file"}`` (the server plays its
``--audio`` file in real time) or ``{"mode": "mic"}`` (the client sends its audio). In mic mode every later
binary message is audio: 16 kHz mono signed 16-bit little-endian samples, any number (an odd number of bytes,
or more than 10 s in one message, is refused). Text ``{"type": "end"}`` ends the stream; ``{"type": "stats",
...}`` reports the page's counts. The server sends, per frame, one binary message::

    4-byte little-endian header length | header JSON | JPEG of the frame | the frame's 40 ms of audio (int16)

with the header ``{"frame": i, "latency_ms": ..., "jpeg": n_bytes, "audio": n_bytes}`` — in file mode the
audio rides with its frame, so the page plays both in step; in mic mode the audio part is empty. Then text
``{"type": "end", "frames": n}`` after the last frame, and ``{"type": "error", "message": ...}`` before the
server closes a connection it cannot serve (bad first message, bad audio). Other connections are not touched.

**Latency** is measured on the server, per frame: from the moment the audio chunk holding the frame's last
sample arrived (in file mode: when the real-time clock reached it) to the moment the frame is written to the
socket. It includes the look-ahead wait (``LiveTalker``), the conditions, the render and the JPEG.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from talklib.errors import UserError
from talklib.live.stream import HOP, SAMPLE_RATE, LiveTalker

MAX_MESSAGE_S = 10.0


def encode_frame(index: int, rgb: np.ndarray, latency_ms: float, pcm: bytes = b"", quality: int = 90) -> bytes:
    """One frame's binary message (see the module docstring)."""
    import cv2

    ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    head = json.dumps({"frame": int(index), "latency_ms": round(float(latency_ms), 2), "jpeg": len(jpg),
                       "audio": len(pcm)}).encode()
    return struct.pack("<I", len(head)) + head + jpg.tobytes() + pcm


def decode_frame(msg: bytes) -> tuple[dict, bytes, bytes]:
    """The inverse of ``encode_frame``: (header, jpeg bytes, pcm bytes)."""
    (n,) = struct.unpack("<I", msg[:4])
    head = json.loads(msg[4:4 + n])
    j0 = 4 + n
    return head, msg[j0:j0 + head["jpeg"]], msg[j0 + head["jpeg"]:j0 + head["jpeg"] + head["audio"]]


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


class Live:
    """What all connections share: the loaded checkpoint, one worker thread that renders (the device is one),
    the file to play, the settings, and the counts /stats reports."""

    def __init__(self, talker, audio: np.ndarray | None, lookahead_ms: float, context_s: float, batch: int,
                 half: bool, name: str):
        self.talker, self.audio, self.name = talker, audio, name
        self.lookahead_ms, self.context_s, self.batch, self.half = lookahead_ms, context_s, batch, half
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.reports: list[dict] = []
        self.streams = {"started": 0, "finished": 0, "refused": 0}

    def stream(self) -> LiveTalker:
        return LiveTalker(self.talker, self.lookahead_ms, self.context_s, self.batch, self.half)

    def warm(self) -> None:
        """One second of silence through a stream before the first client: the feature code's imports and the
        first kernels' set-up would otherwise delay that client's first frames (by seconds on a CPU)."""
        s = self.stream()
        s.push(np.zeros(SAMPLE_RATE, np.float32))
        s.finish()


def make_app(live: Live):
    import tornado.web
    import tornado.websocket

    from talklib.live.page import page_html

    class PageHandler(tornado.web.RequestHandler):
        def get(self):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.write(page_html(has_file=live.audio is not None, name=live.name, lookahead_ms=live.lookahead_ms))

    class StatsHandler(tornado.web.RequestHandler):
        def get(self):
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps({"reports": live.reports, "streams": live.streams}))

    class StreamHandler(tornado.websocket.WebSocketHandler):
        def open(self):
            self.mode = None
            self.engine: LiveTalker | None = None
            self.arrived: list[tuple[int, float]] = []   # (stream samples so far, arrival time)
            self.sent = 0
            self.closed = False
            self.lock = asyncio.Lock()
            self.task = None

        def check_origin(self, origin):               # the page is served from this same local server
            return True

        async def on_message(self, message):
            try:
                if isinstance(message, bytes):
                    await self._audio(message)
                else:
                    await self._text(message)
            except UserError as e:
                await self._refuse(str(e))

        async def _text(self, text: str):
            try:
                msg = json.loads(text)
            except ValueError:
                raise UserError("a text message that is not JSON: send {\"mode\": \"file\"} or {\"mode\": \"mic\"} "
                                "first, then audio as binary int16 messages") from None
            if not isinstance(msg, dict):
                raise UserError("a JSON message that is not an object: send {\"mode\": \"file\"} or {\"mode\": \"mic\"}")
            if self.mode is None:
                mode = msg.get("mode")
                if mode not in ("file", "mic"):
                    raise UserError(f"unknown mode {mode!r}: the first message is {{\"mode\": \"file\"}} (the server's "
                                    "wav) or {\"mode\": \"mic\"} (your audio)")
                if mode == "file" and live.audio is None:
                    raise UserError("this server has no --audio file to play: start it with --audio FILE, or use "
                                    "{\"mode\": \"mic\"}")
                self.mode, self.engine = mode, live.stream()
                live.streams["started"] += 1
                self.write_message(json.dumps({"type": "ready", "mode": mode, "lookahead_ms": self.engine.lookahead_ms,
                                               "fps": 25, "sample_rate": SAMPLE_RATE}))
                if mode == "file":
                    self.task = asyncio.ensure_future(self._play())
                return
            kind = msg.get("type")
            if kind == "stats":
                live.reports.append({k: v for k, v in msg.items() if k != "type"})
            elif kind == "end" and self.mode == "mic":
                await self._finish()
            else:
                raise UserError(f"unexpected message {kind!r} in {self.mode} mode: send audio, or {{\"type\": \"end\"}}")

        async def _audio(self, data: bytes):
            if self.mode != "mic":
                raise UserError("binary audio before {\"mode\": \"mic\"}: send that text message first")
            if len(data) % 2:
                raise UserError(f"an audio message of {len(data)} bytes, an odd number: send 16 kHz mono int16 "
                                "little-endian samples (2 bytes each)")
            if len(data) > 2 * SAMPLE_RATE * MAX_MESSAGE_S:
                raise UserError(f"an audio message of {len(data) / 2 / SAMPLE_RATE:.1f} s: send chunks of at most "
                                f"{MAX_MESSAGE_S:g} s (40 ms is usual)")
            x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
            await self._push(x)

        async def _push(self, x: np.ndarray, final: bool = False):
            async with self.lock:
                if self.closed:
                    return
                now = time.perf_counter()
                self.arrived.append((self.engine.received + len(x), now))
                loop = asyncio.get_running_loop()
                push = self.engine.finish if final else (lambda: self.engine.push(x))
                frames = await loop.run_in_executor(live.worker, push)
                for f in frames:
                    self._send(f)

        def _send(self, f):
            if self.closed:
                return
            need = (f.index + 1) * HOP                   # the frame's last sample
            t_in = next(t for n, t in self.arrived if n >= need) if self.arrived[-1][0] >= need else self.arrived[-1][1]
            self.arrived = [(n, t) for n, t in self.arrived if n >= need]
            pcm = b""
            if self.mode == "file":
                pcm = pcm16(live.audio[f.index * HOP:(f.index + 1) * HOP])
            msg = encode_frame(f.index, f.rgb, 1000 * (time.perf_counter() - t_in), pcm)
            try:
                self.write_message(msg, binary=True)
                self.sent += 1
            except tornado.websocket.WebSocketClosedError:
                self.closed = True

        async def _play(self):
            """File mode: push the server's wav at the real-time rate, 40 ms at a time (more when behind)."""
            audio = live.audio
            t0, pos = time.perf_counter(), 0
            try:
                while pos < len(audio) and not self.closed:
                    due = min(len(audio), int((time.perf_counter() - t0) * SAMPLE_RATE) // HOP * HOP + HOP)
                    if due > pos:
                        await self._push(audio[pos:due])
                        pos = due
                    await asyncio.sleep(max(0.0, t0 + pos / SAMPLE_RATE - time.perf_counter()))
                if not self.closed:
                    await self._finish()
            except asyncio.CancelledError:
                pass

        async def _finish(self):
            await self._push(np.zeros(0, np.float32), final=True)
            if not self.closed:
                live.streams["finished"] += 1
                self.write_message(json.dumps({"type": "end", "frames": self.sent}))

        async def _refuse(self, why: str):
            live.streams["refused"] += 1
            if not self.closed:
                try:
                    self.write_message(json.dumps({"type": "error", "message": why}))
                except tornado.websocket.WebSocketClosedError:
                    pass
                self.closed = True
                self.close(code=1003, reason=why[:120])

        def on_close(self):
            self.closed = True
            if self.task is not None:
                self.task.cancel()

    return tornado.web.Application([(r"/", PageHandler), (r"/stats", StatsHandler), (r"/stream", StreamHandler)],
                                   websocket_max_message_size=int(4 * SAMPLE_RATE * MAX_MESSAGE_S))


def listen(app, port: int, host: str = "127.0.0.1"):
    """Bind ``port`` on ``host``; a port in use is a one-line ``UserError``."""
    import errno

    try:
        return app.listen(port, address=host)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pass another --serve PORT, or stop what uses it") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise UserError(f"port {port} needs privileges here: pass a port above 1023, e.g. --serve 8765") from None
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}): pass another --serve PORT") from None


def read_audio_file(path: str | Path) -> np.ndarray:
    from talklib.audio.io import load_audio

    p = Path(path)
    if not p.is_file():
        raise UserError(f"no audio file at {p}: pass a wav (or any file ffmpeg reads) to --audio")
    audio = load_audio(p)
    if len(audio) < HOP:
        raise UserError(f"{p} is shorter than one video frame (40 ms): give a longer recording")
    return audio
