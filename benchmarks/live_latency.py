"""Latency and sustained frame rate of ``python -m talklib live``, end to end, as a client sees it.

Starts the real server (``python -m talklib live --checkpoint CKPT --audio WAV --serve PORT``) in its own
process, connects one websocket client in file mode (the server plays the wav in real time) and records, per
frame: the server's latency (audio chunk in -> frame on the socket, in the frame's header) and when the
client received it. It reports the median / 95th-percentile / max latency, the received frame rate over the
stream, whether the stream kept up with real time (the last frame's arrival after the audio's end), and how
far the live frames are from ``render``'s (the conditions' look-ahead cut, ``talklib.live.stream``): the mean
absolute pixel difference of the frames, and the LSE-C of both videos with notebook 04's expert when
``--sync`` names it.

    python benchmarks/live_latency.py --checkpoint runs/small/checkpoints/nerf03 --seconds 60 \\
        [--audio WAV] [--lookahead 80] [--device auto] [--sync runs/small/models/sync.pt] [--out FILE.json]

Without ``--audio`` it concatenates the synthetic speaker's clips (data/synthetic/small) to ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def speech(seconds: float, data: Path) -> np.ndarray:
    from talklib.audio.io import load_audio

    clips = sorted(data.glob("clips/*/aud.wav")) + sorted(data.glob("speech/*/aud.wav"))
    parts, total = [], 0
    while total < seconds * 16000:
        for p in clips:
            parts.append(load_audio(p))
            total += len(parts[-1])
            if total >= seconds * 16000:
                break
    return np.concatenate(parts)[: int(seconds * 16000)]


async def client(port: int, n_frames: int) -> tuple[list[dict], list[float], list[np.ndarray], float]:
    import cv2
    from tornado.websocket import websocket_connect

    from talklib.live.server import decode_frame

    ws = await websocket_connect(f"ws://127.0.0.1:{port}/stream", max_message_size=64 << 20)
    t0 = time.perf_counter()
    ws.write_message(json.dumps({"mode": "file"}))
    heads, times, rgbs = [], [], []
    while True:
        msg = await ws.read_message()
        if msg is None:
            break
        if isinstance(msg, bytes):
            head, jpg, _ = decode_frame(msg)
            heads.append(head)
            times.append(time.perf_counter() - t0)
            rgbs.append(cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1])
        elif json.loads(msg)["type"] in ("end", "error"):
            break
    ws.close()
    return heads, times, rgbs, t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--audio", default=None)
    ap.add_argument("--data", default=str(ROOT / "data" / "synthetic" / "small"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lookahead", type=float, default=80.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sync", default=None, help="notebook 04's expert (RUN/models/sync.pt): LSE-C of live vs render")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import soundfile as sf
    import torch

    from talklib.audio.io import load_audio
    from talklib.live.stream import HOP, load_live, natural_lookahead_ms
    from talklib.nerf.talk import conditions_from_audio, render_frames

    audio = load_audio(a.audio)[: int(a.seconds * 16000)] if a.audio else speech(a.seconds, Path(a.data))
    tmp = Path(tempfile.mkdtemp(prefix="live-bench-"))
    wav = tmp / "stream.wav"
    sf.write(wav, audio, 16000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "talklib", "live", "--checkpoint", a.checkpoint, "--audio", str(wav),
                             "--serve", str(port), "--lookahead", str(a.lookahead), "--device", a.device],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    print(proc.stdout.read())
                    return 1
                time.sleep(0.2)
        n = len(audio) // HOP
        heads, times, rgbs, _ = asyncio.run(client(port, n))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = np.array([h["latency_ms"] for h in heads])
    span = times[-1] - times[0]
    res = {"checkpoint": a.checkpoint, "seconds": len(audio) / 16000, "frames": len(heads), "expected": n,
           "in_order": [h["frame"] for h in heads] == list(range(len(heads))),
           "latency_ms": {"median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)), "max": float(lat.max())},
           "fps_received": (len(heads) - 1) / span if span > 0 else None,
           "last_frame_after_audio_end_s": times[-1] - len(audio) / 16000,
           "lookahead_ms": a.lookahead}

    talker = load_live(a.checkpoint, a.device)
    model, a2e, extra = talker
    res["natural_lookahead_ms"] = natural_lookahead_ms(model, a2e)
    dev = model.center.device
    res["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU {platform.processor() or platform.machine()}"
    res["size"] = f"{extra['camera']['W']}x{extra['camera']['H']}"
    with torch.no_grad():
        offline = render_frames(model, extra, conditions_from_audio(a2e, extra, audio, model), progress=False,
                                half=dev.type == "cuda")
    live = np.stack(rgbs)
    m = min(len(live), len(offline))
    res["live_vs_render_mean_abs"] = float(np.abs(live[:m].astype(float) - offline[:m]).mean())
    if a.sync:
        from talklib.metrics.suite import sync_metrics, video_landmarks
        from talklib.sync.model import load_sync

        expert = load_sync(a.sync)
        for name, fr in (("live", live[:m]), ("render", offline[:m])):
            import cv2

            up = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_CUBIC) for f in fr]) if fr.shape[1] < 128 else fr
            res[f"lse_c_{name}"] = sync_metrics(up, video_landmarks(up, name), audio[: m * HOP], expert)["lse_c"]
    print(json.dumps(res, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
