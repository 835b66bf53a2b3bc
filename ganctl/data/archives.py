"""Safe archive extraction: nothing lands outside the target, and nothing half-extracted is kept.

Entries that are absolute, contain '..', or are links (symbolic or hard) or special files are
refused, stricter than tarfile's ``data`` filter (which allows links inside the target). Extraction
goes to a temporary folder renamed into place only at the end, and a refused entry, a damaged
stream or a full disk removes that folder: nothing is ever half-extracted under the final name.

A tar is read once, as a stream: each entry is checked as its header is read and extracted by
tarfile with the ``data`` filter (Python 3.10.12, 3.11.4 and later; older Pythons copy the entry's
bytes themselves, with the same checks). A compressed tar is then read to its very end, the gzip
trailer's CRC and length (or bz2's or xz's own checks) included, before the folder is renamed, so
a truncated or corrupt download is reported, never installed. A zip is read once too: its
directory first, then each entry (zipfile checks each one's CRC).

The uncompressed size is capped (a few kilobytes of gzip can hold gigabytes of zeros): the total
at :data:`MAX_RATIO` times the archive's size (at least :data:`MIN_LIMIT`), each entry at
:data:`MAX_MEMBER` too. The sizes the headers declare are checked before the entries are written
(all of a zip's up front; a tar's one by one, as its headers arrive). A zip's bytes are counted
again as they are written, so a header that understates its entry is caught; a tar entry is always
exactly the size its header declares (tarfile reads that many bytes, and fails if they are missing).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ganctl.core.atomic import _file_mode, atomic_dir
from ganctl.core.errors import DatasetError
from ganctl.core.storedirs import human_size
from ganctl.data.download import ProgressFn

# Image archives barely compress (JPEG, PNG): 20x is generous for them, and small archives may
# still grow to MIN_LIMIT. No image of a dataset comes near MAX_MEMBER.
MAX_RATIO = 20
MIN_LIMIT = 64 << 20
MAX_MEMBER = 1 << 30


def _limits(archive: Path) -> tuple[int, int]:
    """(largest total, largest entry) in bytes that extracting ``archive`` may write."""
    total = max(MIN_LIMIT, MAX_RATIO * archive.stat().st_size)
    return total, min(total, MAX_MEMBER)


def _too_big(archive: Path, what: str, limit: int) -> DatasetError:
    return DatasetError(
        f"{archive.name} unpacks to more than {human_size(limit)} ({what}), far beyond what a "
        f"{human_size(archive.stat().st_size)} archive of images holds: refused, nothing was extracted"
    )


def _check_sizes(archive: Path, sizes: list[tuple[str, int]]) -> None:
    """Refuse before writing when the sizes the headers declare are over :func:`_limits`."""
    total_limit, member_limit = _limits(archive)
    for name, size in sizes:
        if size > member_limit:
            raise _too_big(archive, f"entry {name!r} alone", member_limit)
    total = sum(size for _, size in sizes)
    if total > total_limit:
        raise _too_big(archive, f"its {len(sizes):,} files together", total_limit)


def _check_member(name: str, archive: Path) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise DatasetError(f"{archive.name} has an unsafe entry {name!r} (absolute or '..'): refused, nothing was extracted")


def extract(archive: Path, dest: Path, progress: ProgressFn | None = None) -> Path:
    """Extract a .zip or .tar(.gz) archive into the new folder ``dest`` (which must not exist).

    ``progress`` gets the downloader's events, counted in bytes written.
    """
    archive = Path(archive)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, dest, progress)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, dest, progress)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as e:
        if isinstance(e, OSError) and not isinstance(e, EOFError) and e.errno is not None:
            raise
        raise DatasetError(f"{archive.name} is damaged ({e}): delete it and download again") from e
    raise DatasetError(f"{archive.name} is neither a zip nor a tar archive: delete it and download again")


class _Progress:
    """Report bytes written, and count them against the limits whatever the headers said; the
    bar's end says nothing was 'fetched' (complete=False)."""

    def __init__(self, progress: ProgressFn | None, total: int, archive: Path):
        self.progress = progress
        self.archive = archive
        self.total_limit, self.member_limit = _limits(archive)
        self.written = 0
        if progress:
            progress("start", total=total, resumed=0)

    def copy(self, src, out, name: str) -> None:
        member = 0
        # read at most one byte past a limit: enough to know it is crossed, never more
        while chunk := src.read(min(1 << 20, self.member_limit - member + 1, self.total_limit - self.written + 1)):
            member += len(chunk)
            self.written += len(chunk)
            if member > self.member_limit:
                raise _too_big(self.archive, f"entry {name!r} alone", self.member_limit)
            if self.written > self.total_limit:
                raise _too_big(self.archive, "its files together", self.total_limit)
            out.write(chunk)
            if self.progress:
                self.progress("advance", n=len(chunk))

    def end(self) -> None:
        if self.progress:
            self.progress("end", complete=False)


def _write_entries(archive: Path, dest: Path, entries: list[tuple[str, Callable[[], BinaryIO] | None]], total: int,
                   progress: ProgressFn | None) -> Path:
    """Write checked ``entries`` (name, opener of its bytes; None for a folder) into ``dest``,
    through a temporary folder renamed into place at the end."""
    bar = _Progress(progress, total, archive)
    try:
        with atomic_dir(dest) as tmp:
            for name, open_src in entries:
                target = tmp / name
                if open_src is None:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open_src() as src, open(target, "wb") as out:
                    bar.copy(src, out, name)
    finally:
        bar.end()
    return dest


def _extract_zip(archive: Path, dest: Path, progress: ProgressFn | None = None) -> Path:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DatasetError(f"{archive.name} has a link entry {info.filename!r}: refused, nothing was extracted")
        _check_sizes(archive, [(i.filename, i.file_size) for i in infos if not i.is_dir()])
        entries = [(i.filename, None if i.is_dir() else partial(zf.open, i)) for i in infos]
        return _write_entries(archive, dest, entries, sum(i.file_size for i in infos), progress)


# a compressed tar's first bytes -> the reader that decompresses it and checks its end (gzip's
# CRC and length, bz2's and xz's own checks), raising EOFError or OSError when it is cut or damaged
_DECOMPRESSORS: tuple[tuple[bytes, Callable[[BinaryIO], BinaryIO]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


class _CountingReader:
    """The archive file, reporting the bytes read from it as extraction progress."""

    def __init__(self, raw: BinaryIO, progress: ProgressFn | None):
        self.raw, self.progress = raw, progress

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.progress and data:
            self.progress("advance", n=len(data))
        return data

    def readinto(self, b) -> int:  # bz2 and lzma's readers may read this way
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _tar_stream(archive: Path, progress: ProgressFn | None) -> Iterator[tuple[tarfile.TarFile, BinaryIO | None]]:
    """The archive opened as a stream (read once, front to back), and its decompressor if it is one
    ganctl knows (gzip, bz2, xz): reading that to its end checks the compressed stream's trailer."""
    with open(archive, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        counting = _CountingReader(raw, progress)
        opener = next((open_ for magic, open_ in _DECOMPRESSORS if head.startswith(magic)), None)
        with contextlib.ExitStack() as stack:
            if opener is None:  # a plain tar, or a compression only tarfile knows
                tf = stack.enter_context(tarfile.open(fileobj=counting, mode="r|*"))  # type: ignore[arg-type]
                yield tf, None
                return
            inner = stack.enter_context(opener(counting))  # type: ignore[arg-type]
            tf = stack.enter_context(tarfile.open(fileobj=inner, mode="r|"))
            yield tf, inner


class _TarChecks:
    """Each tar entry as its header is read: a refusal, or what may be written (the caps counted)."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.total_limit, self.member_limit = _limits(archive)
        self.total = self.files = 0

    def __call__(self, m: tarfile.TarInfo) -> None:
        archive = self.archive
        _check_member(m.name, archive)
        if m.issym() or m.islnk():
            raise DatasetError(f"{archive.name} has a link entry {m.name!r}: refused, nothing was extracted")
        if not (m.isfile() or m.isdir()):
            raise DatasetError(f"{archive.name} has a special entry {m.name!r}: refused, nothing was extracted")
        if m.isfile():
            if m.size > self.member_limit:
                raise _too_big(archive, f"entry {m.name!r} alone", self.member_limit)
            self.total += m.size
            self.files += 1
            if self.total > self.total_limit:
                raise _too_big(archive, f"its first {self.files:,} files together", self.total_limit)


def _data_filter(check: _TarChecks, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """ganctl's checks, then tarfile's ``data`` filter; files and folders get the modes a file
    ganctl writes gets (the user's umask), not the archive's."""
    check(member)
    member = tarfile.data_filter(member, path)
    mode = _file_mode() | (0o111 if member.isdir() else 0)
    return member.replace(mode=mode, deep=False)


def _extract_tar(archive: Path, dest: Path, progress: ProgressFn | None = None) -> Path:
    if progress:
        progress("start", total=archive.stat().st_size, resumed=0)  # counted in the archive's bytes read
    check = _TarChecks(archive)
    try:
        with _tar_stream(archive, progress) as (tf, inner), atomic_dir(dest) as tmp:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(tmp, filter=partial(_data_filter, check))
            else:  # before Python 3.10.12 / 3.11.4: the same checks, and the bytes copied here
                for m in tf:
                    check(m)
                    target = tmp / m.name
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(m) as src, open(target, "wb") as out:  # type: ignore[union-attr]
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
            # tar stops at its end-of-archive block; read on to the end of the compressed stream,
            # so a cut-off gzip trailer or a CRC mismatch fails too (EOFError / BadGzipFile), and
            # the folder is not renamed into place
            while inner is not None and inner.read(1 << 20):
                pass
    finally:
        if progress:
            progress("end", complete=False)
    return dest
