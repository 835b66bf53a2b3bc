"""A small in-memory HTTP file server for download tests (stdlib only).

It listens on 127.0.0.1, port 0 (a free port the OS picks), never on any other address, and serves
``server.files`` (a dict of relative path -> bytes) from a background thread. Besides plain GETs it
can:

- answer Range requests (``bytes=N-``, ``bytes=N-M``, ``bytes=-K``) with 206 and Content-Range,
  or 416 when the range starts past the end; ``ignore_range(path)`` makes it answer 200 instead;
- cut a transfer short: ``truncate(path, after=N, times=K)`` sends the full Content-Length but
  only N bytes of the body on the first K requests for ``path`` (every request if K is None),
  then closes the connection;
- fail: ``fail(path, status, times=K)`` answers ``status`` on the first K requests;
- serve an HTML error page with status 200 in place of a file: ``serve_html(path)``;
- trickle: ``trickle(path, chunk=N, delay=S, times=K)`` sends the body N bytes at a time with S
  seconds between writes on the first K requests (every request if K is None);
- 404 for anything else.

Every request is recorded in ``server.requests`` as ``Request(method, path, range)``, where
``path`` is in the same form as the keys of ``files`` (no leading "/", no query string) and
``range`` is the Range header as sent (None without one), so tests can assert that a resume
asked for ``bytes=N-``.

Use it as a pytest fixture from any test module::

    from tests.httpserver import http_server  # noqa: F401

    def test_x(http_server):
        http_server.files["a.bin"] = b"..."
        url = http_server.url + "a.bin"

or without pytest as a context manager: ``with FileServer() as server: ...``.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HOST = "127.0.0.1"

HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Download unavailable</title></head>\n"
    b"<body><h1>Sorry</h1><p>This file is temporarily unavailable. Please try again later.</p>"
    b"</body></html>\n"
)

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


class _Rule:
    """A behaviour for a path that applies to the first ``times`` requests (None: to all)."""

    def __init__(self, value: int, times: int | None):
        self.value = value
        self.times = times

    def take(self) -> bool:
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck client cannot keep a handler thread (and teardown) waiting forever
    server: _HTTPServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self._respond(send_body=True)

    def do_HEAD(self):
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        owner = self.server.owner
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        self.close_connection = True
        status, truncate_after, ignore_range, html, data, self._trickle = owner._plan(
            Request(self.command, path, range_header)
        )

        if status is not None:
            self.send_error(status)
            return
        if html:
            self._send(200, HTML_ERROR_PAGE, send_body, content_type="text/html; charset=utf-8")
            return
        if data is None:
            self.send_error(404)
            return

        headers = {"Accept-Ranges": "bytes"}
        code, body = 200, data
        if range_header and not ignore_range:
            span = _parse_range(range_header, len(data))
            if span == "unsatisfiable":
                self._send(416, b"", send_body, extra={"Content-Range": f"bytes */{len(data)}"})
                return
            if span is not None:
                first, last = span
                code, body = 206, data[first : last + 1]
                headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        self._send(code, body, send_body, extra=headers, truncate_after=truncate_after)

    def _send(self, code, body, send_body, content_type="application/octet-stream", extra=None, truncate_after=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))  # the full length, even when truncating
        self.send_header("Connection", "close")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            body = body if truncate_after is None else body[:truncate_after]
            if self._trickle is None:
                self.wfile.write(body)
            else:
                self._write_slowly(body, *self._trickle)
        self.wfile.flush()
        # close_connection is set: the socket is shut down when the handler returns, so a
        # truncated body ends in a clean EOF before Content-Length bytes arrived

    def _write_slowly(self, body: bytes, chunk: int, delay: float) -> None:
        stopping = self.server.owner._stopping
        for i in range(0, len(body), chunk):
            if i and stopping.wait(delay):
                return  # the server is stopping: end the transfer short
            try:
                self.wfile.write(body[i : i + chunk])
                self.wfile.flush()
            except OSError:  # the client gave up (as a rate check should)
                return


def _parse_range(header: str, size: int):
    """(first, last) for a single satisfiable range; "unsatisfiable"; None to ignore the header."""
    m = _RANGE_RE.fullmatch(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range: the last K bytes
        k = int(m.group(2))
        if k == 0:
            return "unsatisfiable"
        return max(size - k, 0), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, size - 1)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    owner: FileServer


class FileServer:
    """The object the ``http_server`` fixture yields: ``.url``, ``.files``, ``.requests``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.url = ""
        self._html: set[str] = set()
        self._no_range: set[str] = set()
        self._truncate: dict[str, _Rule] = {}
        self._fail: dict[str, _Rule] = {}
        self._trickle: dict[str, tuple[_Rule, int, float]] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ configuration

    def truncate(self, path: str, after: int, times: int | None = None) -> None:
        """Send only ``after`` body bytes (then close) on the next ``times`` requests; None: always."""
        with self._lock:
            self._truncate[path] = _Rule(after, times)

    def fail(self, path: str, status: int, times: int | None = None) -> None:
        """Answer ``status`` (e.g. 500, 503) on the next ``times`` requests for ``path``; None: always."""
        with self._lock:
            self._fail[path] = _Rule(status, times)

    def trickle(self, path: str, chunk: int, delay: float, times: int | None = None) -> None:
        """Send ``path`` ``chunk`` bytes at a time, ``delay`` seconds apart, on the next ``times`` requests."""
        with self._lock:
            self._trickle[path] = (_Rule(chunk, times), chunk, delay)

    def serve_html(self, path: str) -> None:
        """Answer ``path`` with an HTML error page and status 200 (as captive portals and CDNs do)."""
        with self._lock:
            self._html.add(path)

    def ignore_range(self, path: str) -> None:
        """Answer Range requests for ``path`` with 200 and the whole file."""
        with self._lock:
            self._no_range.add(path)

    def fix(self, path: str | None = None) -> None:
        """Drop the truncate/fail/trickle/html/ignore-range behaviours (of one path, or all)."""
        with self._lock:
            for table in (self._truncate, self._fail, self._trickle):
                if path is None:
                    table.clear()
                else:
                    table.pop(path, None)
            for paths in (self._html, self._no_range):
                if path is None:
                    paths.clear()
                else:
                    paths.discard(path)

    # ------------------------------------------------------------ inspection

    def url_for(self, path: str) -> str:
        return self.url + path

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------ life cycle

    def start(self) -> FileServer:
        self._stopping.clear()
        self._httpd = _HTTPServer((HOST, 0), _Handler)
        self._httpd.owner = self
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="test-http-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()  # stops serve_forever
        self._httpd.server_close()  # closes the listening socket, joins handler threads
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ used by the handler

    def _plan(self, request: Request):
        with self._lock:
            self.requests.append(request)
            path = request.path
            fail = self._fail.get(path)
            status = fail.value if fail is not None and fail.take() else None
            trunc = self._truncate.get(path)
            truncate_after = None
            if status is None and trunc is not None and trunc.take():
                truncate_after = trunc.value
            slow = self._trickle.get(path)
            trickle = slow[1:] if status is None and slow is not None and slow[0].take() else None
            return (status, truncate_after, path in self._no_range, path in self._html, self.files.get(path),
                    trickle)


@pytest.fixture
def http_server():
    """A running :class:`FileServer` on 127.0.0.1; stopped (threads joined) at teardown."""
    with FileServer() as server:
        yield server
