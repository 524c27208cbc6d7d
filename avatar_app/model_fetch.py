"""Download model files with resume and checksum, into the per-user model cache.

A download goes to ``<dest>.part``; an interrupted one resumes from there with an HTTP Range
request; only a file with the expected SHA-256 is renamed to ``dest``.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engines.errors import ModelMissing
from engines.face import model_file
from engines.face.model_file import sha256_of

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_so_far, total_bytes_or_None)`` while downloading."""

CHUNK = 1 << 16
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def fetch_face_landmarker(progress: Progress | None = None) -> Path:
    """Download Google's face_landmarker.task into the user model cache; return its path."""
    dest = model_file.user_model_dir() / model_file.FILE_NAME
    return fetch_file(model_file.URL, dest, model_file.SHA256, progress)


def fetch_file(
    url: str,
    dest: Path,
    sha256: str,
    progress: Progress | None = None,
    *,
    attempts: int = 5,
    timeout: float = 30.0,
) -> Path:
    """``dest``, downloaded from ``url`` unless it is already there with the right SHA-256.

    Up to ``attempts`` requests are made; each continues where the last one stopped. Raises
    ModelMissing when the download keeps failing or the result has the wrong checksum (the
    bad file is deleted).
    """
    dest = Path(dest)
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error = "no attempt was made"
    for attempt in range(1, attempts + 1):
        try:
            if _download_rest(url, part, progress, timeout):
                return _verified(part, dest, sha256, url)
            last_error = "the connection closed before the whole file arrived"
        except _Retry as exc:
            last_error = str(exc)
        log.info("Download of %s interrupted (attempt %d): %s", url, attempt, last_error)
    raise ModelMissing(
        f"Could not download {url} after {attempts} attempts ({last_error}). Check the "
        f"internet connection and try again; what arrived so far is kept in {part}. Or "
        f"download the file yourself and save it as {dest}."
    )


class _Retry(Exception):
    """A failure worth another request."""


def _download_rest(url: str, part: Path, progress: Progress | None, timeout: float) -> bool:
    """Append the missing bytes of ``url`` to ``part``; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and have:  # nothing after `have`: the .part is already whole
                return True
            if exc.code in _RETRYABLE_STATUS:
                raise _Retry(f"the server answered {exc.code} {exc.reason}") from exc
            raise ModelMissing(
                f"Downloading {url} failed: the server answered {exc.code} {exc.reason}. "
                "The address may have changed; check for an avatar-app update."
            ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _Retry(f"could not connect: {exc}") from exc
    with response:
        start, total = _span(response, have)
        try:
            with part.open("r+b" if start else "wb") as out:
                out.seek(start)
                out.truncate()
                done = start
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except (http.client.IncompleteRead, OSError) as exc:
            raise _Retry(f"the transfer broke off: {exc}") from exc
    return total is None or done >= total


def _span(response: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
    """(offset where the body starts, full file size if known) for a 200 or 206 answer."""
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match and int(match[1]) == have:
            return have, None if match[3] == "*" else int(match[3])
        raise _Retry("the server resumed at the wrong place")
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _verified(part: Path, dest: Path, sha256: str, url: str) -> Path:
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink()
        raise ModelMissing(
            f"The file downloaded from {url} is not the expected one (SHA-256 {actual}, "
            f"expected {sha256}) and was deleted. Try again later; if this keeps happening "
            "the file on the server has changed, so check for an avatar-app update."
        )
    os.replace(part, dest)
    log.info("Downloaded %s to %s", url, dest)
    return dest
