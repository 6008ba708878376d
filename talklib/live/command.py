"""``python -m talklib live``: a talking head that follows streaming audio, in the browser.

    python -m talklib live --checkpoint CKPT --serve 8765 [--audio FILE] [--host 127.0.0.1] [--lookahead MS]
        [--context S] [--batch N] [--device auto]

Opens a local web server (``talklib.live.server``); ``http://127.0.0.1:8765`` shows the page
(``talklib.live.page``): the server's ``--audio`` file played in real time, or your microphone, drawn as it is
heard, with the measured latency and frame rate. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse

from talklib.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a per-speaker NeRF checkpoint folder (train / notebooks 03-08)")
    p.add_argument("--serve", type=int, default=8765, metavar="PORT", help="port of the local web server (8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--audio", default=None, metavar="FILE", help="a wav (or any file ffmpeg reads) the page can play "
                   "in real time; without it, the page uses the microphone")
    p.add_argument("--lookahead", type=float, default=80.0, metavar="MS",
                   help="audio past a frame the stream waits for before drawing it (80 ms; the checkpoint's own "
                        "need is printed at start: with at least that much, frames equal `render`'s)")
    p.add_argument("--context", type=float, default=None, metavar="S",
                   help="seconds of past audio the features see (0.4 for a 3DMM-expression checkpoint, 1 otherwise)")
    p.add_argument("--batch", type=int, default=4, help="frames per render call when the stream is behind (4)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from talklib.live.server import Live, listen, make_app, read_audio_file
    from talklib.live.stream import load_live, natural_lookahead_ms

    if not 1 <= args.serve <= 65535:
        raise UserError(f"--serve {args.serve}: give a port from 1 to 65535, e.g. 8765")
    if args.batch < 1:
        raise UserError(f"--batch {args.batch}: give a positive number of frames per render call, e.g. 4")
    audio = read_audio_file(args.audio) if args.audio else None
    talker = load_live(args.checkpoint, args.device)
    model, a2e, extra = talker
    dev = model.center.device
    live = Live(talker, audio, args.lookahead, args.context, args.batch, half=dev.type == "cuda",
                name=str(args.checkpoint))
    live.warm()                                     # checks --lookahead and --context, and warms up, before serving
    need = natural_lookahead_ms(model, a2e)
    cam = extra["camera"]
    what = "exactly `render`'s frames" if args.lookahead >= need else "the future past it cut (edges repeated)"
    print(f"live: {args.checkpoint} at {cam['W']}x{cam['H']} on {dev}; look-ahead {args.lookahead:g} ms (the "
          f"checkpoint reads {need:.0f} ms ahead offline: {what})", flush=True)

    async def serve():
        app = make_app(live)
        server = listen(app, args.serve, args.host)
        print(f"open http://{args.host}:{args.serve}  ({'--audio ' + args.audio + ' or ' if audio is not None else ''}"
              f"the microphone) · Ctrl-C stops", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        print("live: stopped", flush=True)
    finally:
        live.worker.shutdown(wait=False, cancel_futures=True)
    return 0
