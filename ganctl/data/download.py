"""One downloader for every remote file: datasets now, pretrained weights later.

- The bytes go to ``<dest>.incomplete`` and are renamed onto ``dest`` only after the size and the
  checksum match, so a file under its final name is always whole and verified.
- An interrupted transfer is retried, resuming with an HTTP Range request where the server allows
  it. If every attempt fails, the partial file is kept (under its ``.incomplete`` name) so the next
  run resumes; a file that fails its checksum is deleted.
- Mirrors: each file is tried at every base URL in turn.
- A transfer slower than ``GANCTL_DOWNLOAD_MIN_RATE`` bytes/s over the last
  ``GANCTL_DOWNLOAD_RATE_WINDOW`` seconds is abandoned like a cut one (a socket timeout alone never
  fires while a server trickles a byte now and then).
- An archive with no published checksum (.gz, .tgz, .zip) is read through before it is accepted,
  and a web page served in place of an archive is recognised: either is deleted, and the next
  mirror is tried.

Only the standard library is used (urllib): the one extra feature we need over a plain GET is
Range resume, which neither urllib-based helpers nor pooch offer.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ganctl import __version__
from ganctl.core.errors import DownloadError, NoSpaceError, is_disk_full

# progress(event, **fields): event is "start" (total=int|None, resumed=int), "advance" (n=int)
# or "end" (complete=bool). The CLI turns these into a rich progress bar; the library never imports rich.
ProgressFn = Callable[..., None]

_CHUNK = 1 << 16

# a file under one of these names is never a web page, whatever the server says
_ARCHIVE_SUFFIXES = (".gz", ".tgz", ".tar", ".zip")

MIN_RATE_ENV = "GANCTL_DOWNLOAD_MIN_RATE"
RATE_WINDOW_ENV = "GANCTL_DOWNLOAD_RATE_WINDOW"
DEFAULT_MIN_RATE = 1024.0  # bytes per second
DEFAULT_RATE_WINDOW = 30.0  # seconds


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise DownloadError(f"{name}={raw!r} is not a number of 0 or more: fix or unset it")
    return value


@dataclass(frozen=True)
class RemoteFile:
    """A file published at ``<base URL>/<name>`` with a known size and checksum."""

    name: str
    size: int | None = None
    checksum: str | None = None  # "md5:<hex>" or "sha256:<hex>", as the publisher gives it
    url: str | None = None  # where the publisher serves it, when that is not <base>/<name>


def _hasher(checksum: str | None):
    if not checksum:
        return None, None
    algo, _, digest = checksum.partition(":")
    if algo not in ("md5", "sha256") or not digest:
        raise ValueError(f"bad checksum spec {checksum!r}")
    return hashlib.new(algo), digest.lower()


def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def join_url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _open(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": f"ganctl/{__version__}"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=timeout)


def looks_like_html(path: Path) -> bool:
    """True when ``path`` starts like an HTML page (a login or error page served in place of a file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html"))


def download(
    remote: RemoteFile,
    bases: Sequence[str],
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float | None = None,
    min_rate: float | None = None,
    rate_window: float | None = None,
) -> Path:
    """Fetch ``remote`` into ``dest`` (verified), trying each base URL; return ``dest``.

    An attempt that brings fewer than ``min_rate`` bytes/s over the last ``rate_window`` seconds
    (defaults: the environment, else 1 KiB/s over 30 s; a rate of 0 turns the check off) is
    abandoned, its bytes kept for the next attempt to resume.
    Raises :class:`DownloadError` with a message that says what happened and what to do.
    """
    dest = Path(dest)
    if backoff is None:
        backoff = _env_number("GANCTL_DOWNLOAD_BACKOFF", 1.0)
    if min_rate is None:
        min_rate = _env_number(MIN_RATE_ENV, DEFAULT_MIN_RATE)
    if rate_window is None:
        rate_window = _env_number(RATE_WINDOW_ENV, DEFAULT_RATE_WINDOW)
    slow = _RateGuard(min_rate, rate_window)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".incomplete")
    errors: list[str] = []
    bad = None
    for base in bases:
        url = base if base == remote.url else join_url(base, remote.name)
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                _fetch(url, part, remote.size, timeout, progress, slow)
            except _Permanent as e:  # 404, 403: no point retrying this URL
                errors.append(f"{url}: {e}")
                break
            except (OSError, http.client.HTTPException, _Incomplete) as e:
                if is_disk_full(e):  # not the network's fault: asking again cannot help
                    raise NoSpaceError(part) from e
                reason = getattr(e, "reason", None) or e
                errors.append(f"{url}: {reason}")
                continue
            try:
                _verify(part, remote, url)
            except _BadFile as e:  # a wrong file is not fixed by asking again: next mirror
                bad = str(e)
                errors.append(bad)
                break
            os.replace(part, dest)
            return dest
    if bad is not None and errors[-1] is bad:
        raise DownloadError(bad)
    have = part.stat().st_size if part.exists() else 0
    kept = (
        f" {have:,} bytes are kept in {part.name}; run the same command again to resume."
        if have
        else ""
    )
    raise DownloadError(
        f"could not download {remote.name} ({errors[-1] if errors else 'no URL'}).{kept}"
        " Check your connection or pass --mirror URL."
    )


class _Permanent(Exception):
    pass


class _Incomplete(Exception):
    pass


class _BadFile(Exception):
    pass


class _RateGuard:
    """Abandon an attempt that brings fewer than ``min_rate`` bytes/s over the last ``window`` seconds."""

    def __init__(self, min_rate: float, window: float):
        self.min_rate = min_rate
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def begin(self) -> None:
        self.samples = deque([(time.monotonic(), 0)])

    def check(self, got: int) -> None:
        if self.min_rate <= 0 or self.window <= 0:
            return
        now = time.monotonic()
        samples = self.samples
        samples.append((now, got))
        # keep one sample at or before the window's start: it is the window's baseline
        while len(samples) > 1 and samples[1][0] <= now - self.window:
            samples.popleft()
        since, base = samples[0]
        if now - since >= self.window and got - base < self.min_rate * self.window:
            raise _Incomplete(
                f"too slow: {got - base:,} bytes in the last {now - since:.0f} s, below the minimum of "
                f"{self.min_rate:,.0f} bytes/s ({MIN_RATE_ENV}, over {RATE_WINDOW_ENV}={self.window:g} s)"
            )


def _fetch(url: str, part: Path, size: int | None, timeout: float, progress: ProgressFn | None,
           slow: _RateGuard | None = None) -> None:
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start > size:  # a stale partial file from another version
        part.unlink()
        start = 0
    if size is not None and start == size:
        return  # complete from an earlier attempt; the caller verifies it
    try:
        resp = _open(url, start, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # our partial file is no prefix of what the server has
            part.unlink()
            raise _Incomplete("server refused to resume; starting over") from e
        if e.code in (401, 403, 404, 410):
            raise _Permanent(f"HTTP {e.code} {e.reason}") from e
        raise _Incomplete(f"HTTP {e.code} {e.reason}") from e
    with resp:
        resumed = start if resp.status == 206 else 0
        length = resp.headers.get("Content-Length")
        total = (resumed + int(length)) if length is not None else size
        if progress:
            progress("start", total=total, resumed=resumed)
        got = resumed
        expected = total if total is not None else size
        if slow:
            slow.begin()
        try:
            with open(part, "ab" if resumed else "wb") as f:
                # read1 returns what has arrived: read() would wait for a whole chunk, and a server
                # trickling a byte at a time would never give the rate check a turn
                while chunk := resp.read1(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    if progress:
                        progress("advance", n=len(chunk))
                    if slow and (expected is None or got < expected):
                        slow.check(got - resumed)
        finally:
            if progress:
                progress("end", complete=expected is None or got >= expected)
    if expected is not None and got < expected:
        raise _Incomplete(f"connection closed after {got:,} of {expected:,} bytes")


def _verify(part: Path, remote: RemoteFile, url: str) -> None:
    problem = None
    actual_size = part.stat().st_size
    if remote.size is not None and actual_size != remote.size:
        problem = f"size {actual_size:,} bytes, expected {remote.size:,}"
    else:
        h, expected = _hasher(remote.checksum)
        if h is not None:
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != expected:
                problem = f"{h.name} {h.hexdigest()}, expected {expected}"
    is_archive = remote.name.lower().endswith(_ARCHIVE_SUFFIXES)
    if (problem or is_archive) and looks_like_html(part):
        part.unlink()
        failed = f" that failed verification ({problem})" if problem else ""
        raise _BadFile(
            f"the server sent a web page instead of {remote.name}: {url} answered with an HTML page{failed}. "
            "It was deleted: try again later, or pass --mirror URL for another source."
        )
    if problem:
        part.unlink()
        raise _BadFile(
            f"{remote.name} from {url} failed verification: {problem}. "
            "The file was deleted; try again, or pass --mirror URL for another source."
        )
    if is_archive and not remote.checksum:
        damage = _stream_damage(part, remote.name)
        if damage:
            part.unlink()
            raise _BadFile(
                f"{remote.name} from {url} is damaged ({damage}). The archive was deleted: run the same command "
                "again to download it afresh, or pass --mirror URL for another source."
            )


def _stream_damage(path: Path, name: str) -> str | None:
    """Why the compressed stream of an archive with no checksum to check does not read to its end, or None.

    Its size alone says nothing of its bytes; without this, a damaged archive would be kept and
    fail the same way on every run.
    """
    try:
        if name.lower().endswith((".gz", ".tgz")):
            with gzip.open(path, "rb") as f:
                while f.read(1 << 20):
                    pass
        elif name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                broken = zf.testzip()
            if broken is not None:
                return f"entry {broken!r} fails its CRC check"
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        if isinstance(e, OSError) and not isinstance(e, (EOFError, gzip.BadGzipFile)) and e.errno is not None:
            raise  # a disk error, not a damaged file
        return str(e) or type(e).__name__
    return None
