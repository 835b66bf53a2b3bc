"""Small videos made with PyAV for the translate tests (16 frames of 32x32 by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame(i: int, w: int, h: int) -> np.ndarray:
    """A frame with a bar that moves one step a frame on a still background."""
    arr = np.full((h, w, 3), (40, 120, 200), np.uint8)
    x = (2 * i) % max(1, w - 4)
    arr[:, x : x + 4] = (230, 230, 30)
    return arr


def make_video(path: Path, frames: int = 16, size: tuple[int, int] = (32, 32), rate: int = 8, audio: bool = False,
               codec: str = "mpeg4") -> Path:
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if codec == "mpeg4":
            v.bit_rate = 2_000_000
        a = out.add_stream("aac", rate=8000, layout="mono") if audio else None
        for i in range(frames):
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame(i, w, h), format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            n, pts = a.codec_context.frame_size or 1024, 0
            while pts < frames / rate * 8000:
                t = (np.arange(n) + pts) / 8000
                af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono")
                af.sample_rate, af.pts = 8000, pts
                out.mux(a.encode(af))
                pts += n
            out.mux(a.encode(None))
    return Path(path)


def read_video(path: Path) -> tuple[list[np.ndarray], dict]:
    """Every frame (uint8 RGB) and what the container says: rate, size, audio codec."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "size": (v.codec_context.width, v.codec_context.height),
                "audio": c.streams.audio[0].codec_context.name if c.streams.audio else None}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, info
