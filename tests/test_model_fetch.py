"""Downloads with resume and checksum, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from avatar_app.model_fetch import fetch_face_landmarker, fetch_file
from engines.errors import ModelMissing
from engines.face import model_file
from engines.model_cache import cached_sha256, sha256_of, user_model_dir
from tests.http_site import Site, closed_port, serve

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
SIZE = len(PAYLOAD)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
    with serve(root) as served:
        yield served


def test_download_is_verified_and_reports_progress(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "models" / "model.bin"
    seen: list[tuple[int, int | None]] = []
    url = f"{site.base_url}/model.bin"
    assert fetch_file(url, dest, PAYLOAD_SHA, lambda d, t: seen.append((d, t)), size=SIZE) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("model.bin.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_verified_file_is_not_downloaded_again(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.write_bytes(PAYLOAD)
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert site.ranges == []


def test_wrong_checksum_deletes_the_file_and_explains(site: Site, tmp_path: Path) -> None:
    corrupted = bytearray(PAYLOAD)
    corrupted[1000] ^= 0xFF
    (site.root / "model.bin").write_bytes(bytes(corrupted))
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelMissing, match="not the expected one") as info:
        fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert "was deleted" in str(info.value) and "Try again" in str(info.value)
    assert not dest.exists()
    assert not dest.with_name("model.bin.part").exists()


def test_partial_file_is_resumed_with_a_range_request(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    half = len(PAYLOAD) // 2
    dest.with_name("model.bin.part").write_bytes(PAYLOAD[:half])
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert site.ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_transfer_is_resumed(site: Site, tmp_path: Path) -> None:
    site.cut_first_response_at = 100_000
    dest = tmp_path / "model.bin"
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert site.ranges == [None, "bytes=100000-"]
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_only_verified(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.with_name("model.bin.part").write_bytes(PAYLOAD)
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert site.ranges == [f"bytes={len(PAYLOAD)}-"]  # answered 416: nothing left to send
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_on_the_server(site: Site, tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="404"):
        fetch_file(f"{site.base_url}/nothing.bin", tmp_path / "x.bin", PAYLOAD_SHA, size=SIZE)


def test_unreachable_server_gives_up_after_a_few_attempts(tmp_path: Path) -> None:
    port = closed_port()
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelMissing, match="after 3 attempts") as info:
        fetch_file(f"http://127.0.0.1:{port}/model.bin", dest, PAYLOAD_SHA, size=SIZE, attempts=3)
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


def test_the_model_cache_hashes_a_file_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert user_model_dir() == tmp_path / "cache" / "avatar-app" / "models"
    path = tmp_path / "model.bin"
    path.write_bytes(PAYLOAD)
    assert sha256_of(path) == cached_sha256(path) == PAYLOAD_SHA
    path.write_bytes(b"another model")
    assert cached_sha256(path) == hashlib.sha256(b"another model").hexdigest()


# --- Downloads are capped at the expected size ----------------------------------------------


def test_a_bigger_file_than_expected_is_refused_before_it_is_written(
    site: Site, tmp_path: Path
) -> None:
    """The server announces more bytes than the manifest's size: nothing is downloaded."""
    (site.root / "model.bin").write_bytes(PAYLOAD + b"x" * 10_000)
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelMissing, match=rf"offers {SIZE + 10_000} bytes, more than") as info:
        fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert "avatar-app update" in str(info.value)
    assert not dest.exists()
    assert not dest.with_name("model.bin.part").exists()


class _EndlessHandler(BaseHTTPRequestHandler):
    """Answers 200 with no Content-Length and sends bytes until the client hangs up."""

    sent: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        total = 0
        try:
            while total < 64 * SIZE:  # a bound, so a broken cap fails instead of hanging
                self.wfile.write(b"\0" * 65_536)
                total += 65_536
        except OSError:
            pass  # the client stopped reading
        self.sent.append(total)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_stream_longer_than_expected_is_cut_off_at_the_expected_size(tmp_path: Path) -> None:
    """No Content-Length to refuse early: reading stops at the size, the part is deleted."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dest = tmp_path / "model.bin"
    seen: list[int] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.bin"
        with pytest.raises(ModelMissing, match=rf"sent more than the {SIZE} bytes"):
            fetch_file(url, dest, PAYLOAD_SHA, lambda done, _: seen.append(done), size=SIZE)
    finally:
        server.shutdown()
        server.server_close()
    assert max(seen) <= SIZE
    assert not dest.exists()
    assert not dest.with_name("model.bin.part").exists()


def test_an_oversized_part_file_is_discarded_and_the_download_starts_over(
    site: Site, tmp_path: Path
) -> None:
    dest = tmp_path / "model.bin"
    dest.with_name("model.bin.part").write_bytes(PAYLOAD + b"junk")
    fetch_file(f"{site.base_url}/model.bin", dest, PAYLOAD_SHA, size=SIZE)
    assert site.ranges == [None]
    assert dest.read_bytes() == PAYLOAD
