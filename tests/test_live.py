"""Live streaming: the causal engine against the offline render, the server's protocol and its bad input, and
the page in a real (headless) browser."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch

from talklib.errors import UserError
from talklib.live.server import decode_frame, encode_frame
from talklib.live.stream import HOP, LiveTalker, load_live, natural_lookahead_ms


@pytest.fixture(scope="module")
def talker(ckpt):
    return load_live(ckpt, "cpu")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """1.6 s of a gliding tone with a syllable-like envelope, and its wav."""
    import soundfile as sf

    t = np.arange(int(1.6 * 16000)) / 16000
    x = (0.4 * np.sin(2 * np.pi * (150 + 60 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    p = tmp_path_factory.mktemp("live") / "speech.wav"
    sf.write(p, x, 16000)
    return x, p


def _offline(talker, audio):
    from talklib.nerf.talk import conditions_from_audio, render_frames

    model, a2e, extra = talker
    return render_frames(model, extra, conditions_from_audio(a2e, extra, audio, model), progress=False)


def _stream(talker, audio, chunk, **kw):
    lt = LiveTalker(talker, **kw)
    frames = []
    for k in range(0, len(audio), chunk):
        frames += lt.push(audio[k:k + chunk])
    return frames + lt.finish()


def test_with_the_checkpoints_own_lookahead_live_frames_are_renders_frames(talker, speech):
    audio = speech[0]
    need = natural_lookahead_ms(talker[0], talker[1])
    assert 150 < need < 400
    frames = _stream(talker, audio, 640, lookahead_ms=need + 40)
    assert [f.index for f in frames] == list(range(len(audio) // HOP))
    offline = _offline(talker, audio)
    live = np.stack([f.rgb for f in frames])
    assert np.abs(live.astype(int) - offline[:len(live)]).max() <= 1


def test_a_short_lookahead_draws_each_frame_as_soon_as_its_audio_and_lookahead_are_in(talker, speech):
    audio = speech[0]
    lt = LiveTalker(talker, lookahead_ms=80)
    assert lt.push(audio[:HOP]) == []                      # frame 0 waits for 80 ms more
    assert lt.push(audio[HOP:2 * HOP]) == []
    got = lt.push(audio[2 * HOP:3 * HOP + 40])            # 80 ms after frame 0's end: frame 0 only
    assert [f.index for f in got] == [0]
    rest = lt.push(audio[3 * HOP + 40:]) + lt.finish()
    assert [f.index for f in rest] == list(range(1, len(audio) // HOP))


def test_chunk_sizes_do_not_change_the_frames(talker, speech):
    audio = speech[0]
    a = _stream(talker, audio, 640, lookahead_ms=80)
    b = _stream(talker, audio, 1777, lookahead_ms=80)
    assert [f.index for f in a] == [f.index for f in b]


def test_bad_settings_and_audio_are_refused_in_one_line(talker, ckpt, tmp_path):
    with pytest.raises(UserError, match="look-ahead"):
        LiveTalker(talker, lookahead_ms=-5)
    with pytest.raises(UserError, match="context"):
        LiveTalker(talker, context_s=0.1)
    with pytest.raises(UserError, match="NaN"):
        LiveTalker(talker).push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(UserError, match="no NeRF checkpoint"):
        load_live(tmp_path)
    s3d = tmp_path / "s3d_nerf.pt"
    torch.save({"x": 1}, s3d)
    with pytest.raises(UserError, match="single shot"):
        load_live(s3d)


def test_a_frame_message_carries_its_header_picture_and_sound():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:8] = 255
    head, jpg, pcm = decode_frame(encode_frame(7, rgb, 12.345, b"\x01\x00" * 640))
    assert head["frame"] == 7 and head["latency_ms"] == 12.35 and len(pcm) == 1280
    import cv2

    back = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert back.shape == (16, 16, 3) and back[5].mean() > 200 and back[12].mean() < 40


# --- the server, in its own process, as a user starts it --------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ckpt, speech):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "talklib", "live", "--checkpoint", str(ckpt), "--serve", str(port),
                             "--audio", str(speech[1]), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the live server exited: {proc.stdout.read()}")
            time.sleep(0.2)
    yield port, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _session(port, first, audio: bytes | None = None, stop_after: int | None = None, timeout: float = 30):
    """Connect, send ``first`` (text), then ``audio`` (binary) if given; collect messages until the end, an error,
    the server closing, or ``stop_after`` frames (then hang up)."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(f"ws://127.0.0.1:{port}/stream")
    ws.write_message(first)
    if audio is not None:
        for k in range(0, len(audio), 1280):
            ws.write_message(audio[k:k + 1280], binary=True)
        ws.write_message(json.dumps({"type": "end"}))
    frames, texts, times = [], [], []
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = await asyncio.wait_for(ws.read_message(), timeout=deadline - time.time())
        if msg is None:
            break
        if isinstance(msg, bytes):
            frames.append(decode_frame(msg)[0])
            times.append(time.perf_counter())
            if stop_after and len(frames) >= stop_after:
                ws.close()
                break
        else:
            texts.append(json.loads(msg))
            if texts[-1]["type"] in ("end", "error"):
                break
    return frames, texts, times


def test_file_mode_streams_every_frame_in_order_at_the_real_time_rate(server, speech):
    port, _ = server
    frames, texts, times = asyncio.run(_session(port, json.dumps({"mode": "file"})))
    n = len(speech[0]) // HOP
    assert texts[0]["type"] == "ready" and texts[-1] == {"type": "end", "frames": n}
    assert [f["frame"] for f in frames] == list(range(n))
    assert all(f["audio"] == 2 * HOP and f["latency_ms"] > 0 for f in frames)
    span = times[-1] - times[0]
    assert 0.7 * (n - 1) / 25 < span < 2.5 * (n - 1) / 25, span     # paced by the audio, not as fast as possible


def test_mic_mode_turns_the_clients_audio_into_frames(server, speech):
    port, _ = server
    pcm = (speech[0] * 32767).astype("<i2").tobytes()
    frames, texts, _ = asyncio.run(_session(port, json.dumps({"mode": "mic"}), audio=pcm))
    assert texts[-1]["type"] == "end" and [f["frame"] for f in frames] == list(range(len(speech[0]) // HOP))
    assert all(f["audio"] == 0 for f in frames)


@pytest.mark.parametrize("first,audio,says", [
    ("hello", None, "not JSON"),
    (json.dumps({"mode": "video"}), None, "unknown mode"),
    (json.dumps({"mode": "mic"}), b"\x00\x01\x02", "odd number"),
])
def test_garbage_gets_a_clear_message_and_the_server_keeps_serving(server, first, audio, says):
    port, proc = server
    frames, texts, _ = asyncio.run(_session(port, first, audio=audio))
    assert texts[-1]["type"] == "error" and says in texts[-1]["message"], texts
    assert proc.poll() is None
    frames, texts, _ = asyncio.run(_session(port, json.dumps({"mode": "file"}), stop_after=3))
    assert [f["frame"] for f in frames] == [0, 1, 2]


def test_a_client_that_hangs_up_mid_stream_does_not_hurt_the_next(server, speech):
    port, proc = server
    asyncio.run(_session(port, json.dumps({"mode": "file"}), stop_after=2))
    time.sleep(0.3)
    frames, texts, _ = asyncio.run(_session(port, json.dumps({"mode": "file"})))
    assert proc.poll() is None and texts[-1]["type"] == "end" and len(frames) == len(speech[0]) // HOP


def test_a_port_in_use_and_a_bad_checkpoint_are_one_line_errors(ckpt, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "talklib", "live", "--checkpoint", str(ckpt), "--serve", str(port),
                               "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and f"port {port}" in done.stderr and "in use" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "talklib", "live", "--checkpoint", str(tmp_path), "--serve", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr and "--serve 0" in done.stderr


def test_ctrl_c_stops_the_server_cleanly(ckpt):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "talklib", "live", "--checkpoint", str(ckpt), "--serve", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
            break
        except OSError:
            time.sleep(0.2)
    assert "talklib live" in page and "disabled" in page           # no --audio: the file button is off
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in out


def _page_report(port: int, query: str, profile) -> dict:
    """Open the page in headless Chromium (a fake microphone: a beep) and wait for its end-of-stream report."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium): browser test skipped")
    before = len(json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())["reports"])
    proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
                             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--user-data-dir={profile}", f"http://127.0.0.1:{port}/?{query}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, reports = time.time() + 60, []
        while time.time() < deadline:
            reports = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())["reports"]
            if len(reports) > before:
                break
            time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait()
    assert len(reports) > before, f"the page ({query}) did not report back within 60 s"
    return reports[-1]


def test_the_page_with_a_microphone_streams_it_and_measures_the_round_trip(server, tmp_path):
    port, _ = server
    r = _page_report(port, "autostart=mic&seconds=3", tmp_path / "profile")
    assert r["mode"] == "mic" and r["in_order"] is True and r["frames"] >= 40, r     # about 3 s of frames
    assert r["roundtrip_ms_median"] is not None and r["roundtrip_ms_median"] > 0


def test_the_page_in_a_browser_plays_the_stream_and_reports_rate_order_and_latency(server, speech, tmp_path):
    port, _ = server
    r = _page_report(port, "autostart=file", tmp_path / "profile")
    n = len(speech[0]) // HOP
    assert r["frames"] == n and r["in_order"] is True and r["mode"] == "file"
    assert 15 < r["fps"] < 40, r                          # received at about the audio's 25 frames/s
    assert r["latency_ms_median"] is not None and r["latency_ms_median"] > 0
