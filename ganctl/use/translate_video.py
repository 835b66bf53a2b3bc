"""Translating a video frame by frame (PyAV, FFmpeg's libraries), and an animated GIF (Pillow).

Decoding runs in one thread and encoding in another, beside the generator, joined by short
queues: at most a few batches of frames are in memory, whatever the video's length. The output
keeps the input's container, size, frame count and timestamps (so its frame rate); an audio
stream is copied packet by packet, not re-encoded.

Frames are translated as images of a folder are (:class:`ganctl.use.translation.Translator`): in
paper mode each frame with the same seed, so every frame gets the same dropout masks. A fresh draw
per frame would make the output flicker where the input is still (docs/translate.md gives the
measurement); batch norm still uses each frame's own statistics, as the official test does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

from ganctl.core.atomic import atomic_path
from ganctl.core.errors import GanctlError

QUEUE_BATCHES = 3  # batches of frames that may wait on each side of the generator
_END = object()


def import_av():
    try:
        import av
    except ImportError as e:
        raise GanctlError('translating a video needs PyAV: pip install "ganctl[video]"') from e
    return av


def _codec(av, suffix: str) -> str:
    wanted = {".webm": ["libvpx-vp9", "libvpx"], ".avi": ["mpeg4"]}.get(suffix.lower(), ["libx264", "h264", "mpeg4"])
    available = av.codecs_available
    for name in wanted:
        if name in available:
            try:
                av.Codec(name, "w")
                return name
            except Exception:  # a decoder only, in this FFmpeg build
                continue
    return "mpeg4"


class _Worker(threading.Thread):
    """A thread whose exception is raised again by :meth:`result`."""

    def __init__(self, target: Callable[[], None]):
        super().__init__(daemon=True)
        self._target_fn, self.error = target, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # handed to the main thread
            self.error = e

    def result(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _put(q: queue.Queue, item: object, consumer: _Worker) -> None:
    """Put ``item`` on ``q``, or raise the consumer's error if it has stopped taking items."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if not consumer.is_alive():
                consumer.result()
                raise GanctlError("the video writer stopped") from None


def translate_video(src: Path, out: Path, tr, *, batch: int,
                    warn: Callable[[str], None], advance: Callable[[int], None] = lambda n: None,
                    set_total: Callable[[int], None] = lambda n: None) -> int:
    """Translate the video ``src`` into ``out`` with ``tr`` (a :class:`ganctl.use.translator.Translator`):
    the decoding thread prepares each uint8 (H, W, 3) frame (``tr.prepare``: resized, as floats),
    this thread runs batches of them (``tr.run``), the encoding thread resizes each result back
    (``tr.finish``) and encodes it. Returns the number of problems (damaged frames, a truncated
    file), each already said in one line through ``warn``."""
    av = import_av()
    try:
        inp = av.open(str(src))
    except (av.FFmpegError, OSError) as e:
        raise GanctlError(f"{src} is not a readable video ({e})") from e
    problems = 0
    with inp:
        if not inp.streams.video:
            raise GanctlError(f"{src} holds no video stream")
        vin = inp.streams.video[0]
        # slice threads only: with frame threads FFmpeg reports a damaged frame while decoding a
        # later packet (two frames on with three threads), so the warning named the wrong time.
        # Decoding is a few ms a frame against the generator's tenths of a second, in its own thread.
        vin.thread_type = "SLICE"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        expected = int(vin.frames or 0)
        decoded: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES * batch)
        encoded: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        counts = {"frames": 0, "damaged": 0, "ended_early": None, "last": None}
        rate = float(vin.average_rate or 25)
        # where the header says the video ends (a container without a frame count, as Matroska,
        # still has a duration), to tell a cut file from a short one
        if vin.duration is not None:
            end = float(vin.duration * vin.time_base)
        else:
            end = inp.duration / 1e6 if inp.duration else None
        expected = expected or (round(end * rate) if end else 0)
        set_total(expected)

        def decode() -> None:
            streams = [vin] + ([ain] if ain is not None else [])
            try:
                for packet in inp.demux(streams):
                    if packet.stream is ain:
                        if packet.dts is not None:
                            decoded.put(("audio", packet))
                        continue
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as e:
                        counts["damaged"] += 1
                        t = float(packet.pts * packet.time_base) if packet.pts is not None else None
                        warn(f"warning: {src}: a damaged frame{f' at {t:.2f} s' if t is not None else ''} was skipped ({e})")
                        continue
                    for f in frames:
                        counts["frames"] += 1
                        if f.pts is not None:
                            counts["last"] = float(f.pts * f.time_base)
                        decoded.put(("video", (f.pts, f.time_base, tr.prepare(f.to_ndarray(format="rgb24")))))
            except av.FFmpegError as e:  # the container itself is cut or damaged
                counts["ended_early"] = str(e)
            finally:
                decoded.put(_END)

        with atomic_path(out) as tmp, av.open(str(tmp), "w", format=_format(out)) as dst:
            vout = dst.add_stream(_codec(av, out.suffix), rate=vin.average_rate or 25)
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 and vout.height % 2 == 0 else "yuv444p"
            if vout.codec_context.name == "libx264":
                vout.options = {"crf": "18", "preset": "veryfast"}
            else:
                vout.bit_rate = max(int(vin.bit_rate or 0), int(vout.width * vout.height * float(vout.rate or 25) * 0.3))
            aout = dst.add_stream_from_template(ain) if ain is not None else None

            def encode() -> None:
                while (item := encoded.get()) is not _END:
                    kind, payload = item
                    if kind == "audio":
                        payload.stream = aout
                        dst.mux(payload)
                        continue
                    for pts, tb, (y, size) in payload:
                        frame = av.VideoFrame.from_image(tr.finish(y, size))
                        frame.pts, frame.time_base = pts, tb
                        dst.mux(vout.encode(frame))
                dst.mux(vout.encode(None))

            reader, writer = _Worker(decode), _Worker(encode)
            reader.start()
            writer.start()
            try:
                pending: list = []
                while True:
                    item = decoded.get()
                    if item is not _END and item[0] == "audio":
                        _put(encoded, item, writer)
                        continue
                    if item is not _END:
                        pending.append(item[1])
                    if pending and (len(pending) == batch or item is _END):
                        ys = tr.run([x for _, _, (x, _) in pending])
                        _put(encoded, ("video", [(p, tb, (y, size)) for (p, tb, (_, size)), y in zip(pending, ys, strict=True)]), writer)
                        advance(len(pending))
                        pending = []
                    if item is _END:
                        break
            finally:
                if reader.is_alive():  # an error above: let the reader finish into the void
                    while reader.is_alive():
                        try:
                            decoded.get(timeout=0.1)
                        except queue.Empty:
                            pass
                if writer.is_alive():
                    _put(encoded, _END, writer)
                writer.result()
                reader.result()
        problems += counts["damaged"]
        n = counts["frames"]
        cut = end is not None and counts["last"] is not None and counts["last"] + 1.5 / rate < end - float(vin.start_time * vin.time_base if vin.start_time else 0)
        if counts["ended_early"] is not None or cut or (expected and n + counts["damaged"] < expected):
            problems += 1
            of = f" of {expected}" if expected else ""
            warn(f"warning: {src} ends early (truncated or damaged): translated the {n}{of} frames it holds"
                 + (f" ({counts['ended_early']})" if counts["ended_early"] else ""))
        if n == 0:
            out.unlink(missing_ok=True)
            raise GanctlError(f"{src} holds no frame that could be decoded")
    return problems


def _format(out: Path) -> str | None:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".m4v": "mp4", ".mp4": "mp4", ".avi": "avi"}.get(out.suffix.lower())


def translate_gif(src: Path, out: Path, translate: Callable[[list], list], *, batch: int,
                  advance: Callable[[int], None] = lambda n: None, set_total: Callable[[int], None] = lambda n: None) -> int:
    """Translate an animated GIF frame by frame, keeping each frame's duration and the loop. The
    output frames are kept as palette images (one byte a pixel) until the GIF is written."""
    import numpy as np
    from PIL import Image, ImageSequence

    from ganctl.core import images

    try:
        gif = Image.open(src)
    except (OSError, ValueError, SyntaxError) as e:
        raise GanctlError(f"{src} is not a readable GIF ({e})") from e
    with gif:
        set_total(getattr(gif, "n_frames", 1))
        durations, outs, pending = [], [], []

        def flush() -> None:
            outs.extend(p.convert("P", palette=Image.Palette.ADAPTIVE) for p in translate(pending))
            advance(len(pending))
            pending.clear()

        for frame in ImageSequence.Iterator(gif):
            durations.append(int(frame.info.get("duration", 100)))
            pending.append(np.asarray(frame.convert("RGB")))
            if len(pending) == batch:
                flush()
        if pending:
            flush()
    images.save_animation(outs, out, durations)
    return 0
