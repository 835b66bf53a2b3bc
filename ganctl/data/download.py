"""One downloader for every remote file: datasets now, pretrained weights later.

- The bytes go to ``<dest>.incomplete`` and are renamed onto ``dest`` only after the size and the
  checksum match, so a file under its final name is always whole and verified.
- An interrupted transfer is retried, resuming with an HTTP Range request where the server allows
  it. If every attempt fails, the partial file is kept (under its ``.incomplete`` name) so the next
  run resumes; a file that fails its checksum is deleted.
- Mirrors: each file is tried at every base URL in turn.

Only the standard library is used (urllib): the one extra feature we need over a plain GET is
Range resume, which neither urllib-based helpers nor pooch offer.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ganctl import __version__
from ganctl.errors import DownloadError, NoSpaceError, is_disk_full

# progress(event, **fields): event is "start" (total=int|None, resumed=int), "advance" (n=int)
# or "end" (complete=bool). The CLI turns these into a rich progress bar; the library never imports rich.
ProgressFn = Callable[..., None]

_CHUNK = 1 << 16


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
) -> Path:
    """Fetch ``remote`` into ``dest`` (verified), trying each base URL; return ``dest``.

    Raises :class:`DownloadError` with a message that says what happened and what to do.
    """
    dest = Path(dest)
    if backoff is None:
        backoff = float(os.environ.get("GANCTL_DOWNLOAD_BACKOFF", "1.0"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".incomplete")
    errors: list[str] = []
    bad = False
    for base in bases:
        url = base if base == remote.url else join_url(base, remote.name)
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                _fetch(url, part, remote.size, timeout, progress)
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
                errors.append(str(e))
                bad = True
                break
            os.replace(part, dest)
            return dest
    if bad and errors and errors[-1].startswith(remote.name):
        raise DownloadError(errors[-1])
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


def _fetch(url: str, part: Path, size: int | None, timeout: float, progress: ProgressFn | None) -> None:
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
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    if progress:
                        progress("advance", n=len(chunk))
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
    if problem:
        html = " (the server sent an HTML page, not the file)" if looks_like_html(part) else ""
        part.unlink()
        raise _BadFile(
            f"{remote.name} from {url} failed verification: {problem}{html}. "
            "The file was deleted; try again, or pass --mirror URL for another source."
        )
