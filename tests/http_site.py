"""A real HTTP server on 127.0.0.1 serving a folder, with Range requests and hang-ups on demand.

Shared by the download tests: it answers like a CDN does (200, 206 with Content-Range, 416),
records the Range header of every request, and can cut one response short.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Site:
    """What the test server serves, and what it was asked."""

    root: Path
    base_url: str = ""
    ranges: list[str | None] = field(default_factory=list)  # Range header per request
    paths: list[str] = field(default_factory=list)  # URL path per request, same order
    cut_first_response_at: int | None = None  # send this many bytes, then hang up (once)
    cut_path: str | None = None  # only cut the response for this URL path (None: any)


class RangeHandler(BaseHTTPRequestHandler):
    """GET for files under ``site.root`` with single ``bytes=N-`` / ``bytes=N-M`` ranges."""

    site: Site

    def do_GET(self) -> None:
        path = self.site.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        self.site.ranges.append(header)
        self.site.paths.append(self.path)
        start, end = 0, len(data) - 1
        if header:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", header)
            if not match or int(match[1]) >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match[1])
            end = min(int(match[2]), end) if match[2] else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start : end + 1]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self._cut_now():
            self.wfile.write(body[: self.site.cut_first_response_at])
            self.site.cut_first_response_at = None
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _cut_now(self) -> bool:
        site = self.site
        return site.cut_first_response_at is not None and site.cut_path in (None, self.path)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@contextmanager
def serve(root: Path) -> Iterator[Site]:
    """Serve ``root`` on a free port of 127.0.0.1 until the block ends."""
    served = Site(root)
    handler = type("Handler", (RangeHandler,), {"site": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port() -> int:
    """A port of 127.0.0.1 that was just free: nobody listens there."""
    with ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler) as closed:
        return closed.server_address[1]
