"""Downloads with resume and checksum, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from avatar_app.model_fetch import fetch_face_landmarker, fetch_file
from engines.errors import ModelMissing
from engines.face import model_file

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Site:
    """What the test server serves, and what it was asked."""

    root: Path
    base_url: str = ""
    ranges: list[str | None] = field(default_factory=list)
    cut_first_response_at: int | None = None  # send this many bytes, then hang up (once)


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
        cut = self.site.cut_first_response_at
        if cut is not None:
            self.site.cut_first_response_at = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
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


def test_download_is_verified_and_reports_progress(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "models" / "model.bin"
    seen: list[tuple[int, int | None]] = []
    url = f"{site.base_url}/model.bin"
    assert (
        fetch_file(url, dest, PAYLOAD_SHA, lambda done, total: seen.append((done, total))) == dest
    )
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("model.bin.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_verified_file_is_not_downloaded_again(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.write_bytes(PAYLOAD)
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA)
    assert site.ranges == []


def test_wrong_checksum_deletes_the_file_and_explains(site: Site, tmp_path: Path) -> None:
    corrupted = bytearray(PAYLOAD)
    corrupted[1000] ^= 0xFF
    (site.root / "model.bin").write_bytes(bytes(corrupted))
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelMissing, match="not the expected one") as info:
        fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA)
    assert "was deleted" in str(info.value) and "Try again" in str(info.value)
    assert not dest.exists()
    assert not dest.with_name("model.bin.part").exists()


def test_partial_file_is_resumed_with_a_range_request(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    half = len(PAYLOAD) // 2
    dest.with_name("model.bin.part").write_bytes(PAYLOAD[:half])
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA)
    assert site.ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_transfer_is_resumed(site: Site, tmp_path: Path) -> None:
    site.cut_first_response_at = 100_000
    dest = tmp_path / "model.bin"
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA)
    assert site.ranges == [None, "bytes=100000-"]
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_only_verified(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.with_name("model.bin.part").write_bytes(PAYLOAD)
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA)
    assert site.ranges == [f"bytes={len(PAYLOAD)}-"]  # answered 416: nothing left to send
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_on_the_server(site: Site, tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="404"):
        fetch_file(f"{site.base_url}/nothing.bin", tmp_path / "x.bin", PAYLOAD_SHA)


def test_unreachable_server_gives_up_after_a_few_attempts(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nobody listens there
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelMissing, match="after 3 attempts") as info:
        fetch_file(f"http://127.0.0.1:{port}/model.bin", dest, PAYLOAD_SHA, attempts=3)
    assert "internet connection" in str(info.value)
    assert not dest.exists()


def test_face_landmarker_lands_in_the_user_cache_where_it_is_found(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = model_file.face_landmarker_path()
    (site.root / model_file.FILE_NAME).write_bytes(bundled.read_bytes())
    monkeypatch.setattr(model_file, "URL", f"{site.base_url}/{model_file.FILE_NAME}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AVATAR_APP_RESOURCES", str(tmp_path / "no-resources"))
    monkeypatch.delenv(model_file.ENV_VAR, raising=False)
    path = fetch_face_landmarker()
    assert path == tmp_path / "cache" / "avatar-app" / "models" / model_file.FILE_NAME
    assert model_file.face_landmarker_path() == path
