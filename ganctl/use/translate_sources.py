"""What ``ganctl translate`` reads and where each result goes.

A SOURCE is an image, a video (or animated GIF), a folder (its subfolders with ``recursive``), a
glob (``'scans/*.tif'``, ``**`` for any depth), or a text file listing paths (one a line, relative
to the list's folder; blank lines and ``#`` comments skipped); several SOURCEs (as a shell expands
an unquoted glob) are a list. Outputs mirror the inputs: one file for one file, a folder tree with
the inputs' relative paths for the others, a video for a video. Nothing here imports torch.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from ganctl.core.atomic import check_can_write
from ganctl.core.errors import GanctlError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
LIST_SUFFIXES = {".txt", ".lst"}
_MAGIC = set("*?[")


@dataclass
class Item:
    input: Path
    output: Path
    kind: str  # "image", "video" or "gif" (an animated GIF, written as one)


@dataclass
class Job:
    items: list[Item]
    output: Path  # the file written for one input, the folder for several
    single: bool
    skipped: list[str] = field(default_factory=list)  # one line each: inputs refused before any work


def is_animated_gif(path: Path) -> bool:
    if path.suffix.lower() != ".gif":
        return False
    from PIL import Image

    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except (OSError, ValueError, SyntaxError):
        return False  # read (and refused, in one line) as an image later


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "gif" if is_animated_gif(path) else "image"
    return None


def _wanted(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def _out_name(rel: Path, kind: str) -> Path:
    return rel if kind in ("video", "gif") else rel.with_suffix(".png")


def _single_output(src: Path, kind: str, output: str | None) -> Path:
    suffix = src.suffix if kind in ("video", "gif") else ".png"
    if not output:
        return src.parent / f"{src.stem}_translated{suffix}"
    out = Path(output)
    if out.is_dir() or output.endswith(("/", "\\")):
        return out / f"{src.stem}{suffix}"
    return out


def _list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GanctlError(f"cannot read the list {path}: {getattr(e, 'strerror', None) or e}") from e
    names = [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]
    if not names:
        raise GanctlError(f"the list {path} names no files (one path a line)")
    return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def _many(files: list[Path], root: Path, out: Path, skipped: list[str]) -> list[Item]:
    """Items for ``files`` under ``root``, written under ``out`` with their paths relative to it;
    two inputs that would give one output name (a.jpg, a.png) keep their suffix in it (a_jpg.png)."""
    items, taken = [], {}
    for f in files:
        kind = kind_of(f)
        if kind is None:
            skipped.append(f"{f} is neither an image nor a video ({', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
            continue
        rel = _out_name(f.relative_to(root), kind)
        if rel in taken:
            rel = rel.with_name(f"{f.stem}_{f.suffix.lstrip('.').lower()}{rel.suffix}")
        taken[rel] = f
        items.append(Item(f, out / rel, kind))
    return items


def resolve(sources: list[str], output: str | None = None, recursive: bool = False) -> Job:
    """The inputs ``sources`` name and their outputs. Raises GanctlError when nothing can be
    translated (a missing input, an empty folder, a glob that matches nothing)."""
    if not sources:
        raise GanctlError("give a SOURCE: an image, a video, a folder, a glob or a list of paths")
    skipped: list[str] = []
    if len(sources) == 1:
        text = sources[0]
        src = Path(text)
        if src.is_dir():
            return _folder(src, output, recursive)
        if src.is_file() and src.suffix.lower() in LIST_SUFFIXES:
            files = []
            for p in _list(src):
                (files if p.is_file() else skipped).append(p if p.is_file() else f"{p} (listed in {src}) does not exist")
            default = src.parent / f"{src.stem}_translated"
        elif src.is_file():
            kind = kind_of(src) or "image"  # an unknown suffix is tried as an image (PIL knows more)
            out = _single_output(src, kind, output)
            return _checked(Job([Item(src, out, kind)], out, True))
        elif _MAGIC & set(text):
            files = sorted(Path(p) for p in glob.glob(text, recursive=True) if _wanted(Path(p)))
            if not files:
                raise GanctlError(f"the pattern {text!r} matches no images or videos: check it (quote it so the shell "
                                  "leaves it to ganctl; '**' matches any depth)")
            default = Path(os.path.commonpath([str(f.parent) for f in files]))
            default = default.parent / f"{default.name or 'images'}_translated"
        else:
            raise GanctlError(f"input {src} does not exist")
    else:
        files = []
        for text in sources:
            p = Path(text)
            (files if p.is_file() else skipped).append(p if p.is_file() else f"input {p} does not exist")
        default = Path("translated")
    if not files:
        raise GanctlError(f"nothing to translate: {skipped[0]}" if skipped else "nothing to translate")
    root = Path(os.path.commonpath([str(f.parent.absolute()) for f in files]))
    out = Path(output) if output else default
    items = _many([f.absolute() for f in files], root, out, skipped)
    return _checked(Job(items, out, False, skipped))


def _folder(src: Path, output: str | None, recursive: bool) -> Job:
    out = Path(output) if output else src.parent / f"{src.name}_translated"
    if out.exists() and not out.is_dir():
        raise GanctlError(f"{out} is a file: with a folder of inputs, -o names a folder")
    if out.absolute() == src.absolute():
        raise GanctlError(f"-o {out} is the input folder: the results would replace the inputs; give another folder")
    inside = out.absolute().is_relative_to(src.absolute())
    walk = src.rglob("*") if recursive else src.iterdir()
    files = sorted(p for p in walk if _wanted(p) and not (inside and p.absolute().is_relative_to(out.absolute())))
    if not files:
        deeper = not recursive and any(_wanted(p) for p in src.rglob("*"))
        raise GanctlError(f"{src} holds no images or videos" + (": its subfolders do; add --recursive" if deeper else
                          f" ({', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})"))
    return _checked(Job(_many(files, src, out, []), out, False))


def subfolders_note(src: Path, recursive: bool) -> str | None:
    """A note when a folder's subfolders hold inputs that are not translated without --recursive."""
    if recursive or not src.is_dir():
        return None
    n = sum(1 for d in src.iterdir() if d.is_dir() for p in d.rglob("*") if _wanted(p))
    return f"note: {n} file(s) in subfolders of {src} are not translated: add --recursive" if n else None


def _checked(job: Job) -> Job:
    """Drop (with a line each) the items whose output would replace an input."""
    inputs = {i.input.resolve() for i in job.items}
    kept = []
    for item in job.items:
        if item.output.resolve() in inputs:
            line = f"{item.output} would overwrite an input: give -o another path"
            if job.single:
                raise GanctlError(line)
            job.skipped.append(line)
        else:
            kept.append(item)
    job.items = kept
    if not kept:
        raise GanctlError(f"nothing to translate: {job.skipped[0]}")
    check_can_write(job.output, folder=not job.single)  # before the model is loaded, not at the first write
    return job
