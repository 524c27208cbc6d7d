"""Download model files with resume and checksum, into the per-user model cache.

Also installs the LivePortrait weights from a folder the user already has (``--from``).

A download goes to ``<dest>.part``; an interrupted one resumes from there with an HTTP Range
request; it is stopped (and the part deleted) as soon as the server offers or sends more than
the expected size; only a file with the expected SHA-256 is renamed to ``dest``.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from engines.errors import ModelMissing
from engines.face import model_file
from engines.liveportrait import weights
from engines.model_cache import sha256_of, user_model_dir

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_so_far, total_bytes_or_None)`` while downloading."""

CHUNK = 1 << 16
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def fetch_face_landmarker(progress: Progress | None = None) -> Path:
    """Download Google's face_landmarker.task into the user model cache; return its path."""
    dest = user_model_dir() / model_file.FILE_NAME
    return fetch_file(model_file.URL, dest, model_file.SHA256, progress, size=model_file.SIZE)


def fetch_liveportrait(
    progress: Progress | None = None,
    *,
    base_url: str | None = None,
    dest_dir: Path | None = None,
) -> dict[str, Path]:
    """Download the official LivePortrait weights; return ``{name: path}`` like find_weights.

    Files already in ``dest_dir`` (default ``weights.weights_dir()``) with the right SHA-256
    are kept. ``progress`` sees the bytes of all files still to fetch as one total. The files
    come from ``base_url``, else ``$AVATAR_LIVEPORTRAIT_URL``, else Hugging Face.
    """
    base = base_url or os.environ.get(weights.URL_ENV_VAR) or weights.HF_BASE_URL
    folder = Path(dest_dir) if dest_dir is not None else weights.weights_dir()
    pending = [w for w in weights.FILES if not _installed(w, folder)]
    _check_free_space(folder, sum(_still_needed(w, folder) for w in pending))
    total = sum(w.size for w in pending)
    offset = 0
    for weight in pending:
        log.info("Downloading %s", weight.file_name)
        fetch_file(
            weight.url_from(base),
            folder / weight.file_name,
            weight.sha256,
            _shifted(progress, offset, total),
            size=weight.size,
            alternative=_MANUAL_DOWNLOAD,
        )
        offset += weight.size
    return {w.name: folder / w.file_name for w in weights.FILES}


def import_liveportrait(from_dir: Path, dest_dir: Path | None = None) -> dict[str, Path]:
    """Copy the LivePortrait weights the user already has into ``dest_dir``, verified first.

    ``from_dir`` may hold them as on Hugging Face (``liveportrait/base_models/x.pth``), as in
    a LivePortrait checkout (``pretrained_weights/liveportrait/...``), as the ``liveportrait``
    folder itself (``base_models/x.pth``) or flat (``x.pth``). Nothing is copied unless every
    needed file is found and has the right SHA-256.
    """
    source = Path(from_dir).expanduser()
    if not source.is_dir():
        raise ModelMissing(
            f"{source} is not a folder. Give the folder that holds the LivePortrait .pth "
            f"files, e.g. `{weights.FETCH_COMMAND} --from ~/LivePortrait/pretrained_weights`."
        )
    folder = Path(dest_dir) if dest_dir is not None else weights.weights_dir()
    pending = [w for w in weights.FILES if not _installed(w, folder)]
    found = _locate_all(source, pending)
    wrong = [problem for w, path in found.items() if (problem := _mismatch(w, path))]
    if wrong:
        raise ModelMissing(
            f"Nothing was copied: {' '.join(wrong)} Use the human-model files of "
            f"{weights.HF_REPO} (not the animal model or a converted copy): download them "
            f"from https://huggingface.co/{weights.HF_REPO}/tree/main/liveportrait, or run "
            f"`{weights.FETCH_COMMAND}` on a computer that can reach huggingface.co."
        )
    _check_free_space(folder, sum(w.size for w in found))
    for weight, path in found.items():
        _install_copy(path, folder / weight.file_name)
    return {w.name: folder / w.file_name for w in weights.FILES}


_MANUAL_DOWNLOAD = (
    f"If huggingface.co cannot be reached from this computer, download the five files of "
    f"https://huggingface.co/{weights.HF_REPO}/tree/main/liveportrait elsewhere and run "
    f"`{weights.FETCH_COMMAND} --from FOLDER`."
)


def _installed(weight: weights.WeightFile, folder: Path) -> bool:
    path = folder / weight.file_name
    return (
        path.is_file() and path.stat().st_size == weight.size and sha256_of(path) == weight.sha256
    )


def _still_needed(weight: weights.WeightFile, folder: Path) -> int:
    """Bytes of ``weight`` not yet in its ``.part`` file."""
    part = folder / (weight.file_name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    return max(weight.size - have, 0)


def _shifted(progress: Progress | None, offset: int, total: int) -> Progress | None:
    """Report one file's bytes as part of the whole batch."""
    if progress is None:
        return None
    report = progress
    return lambda done, _size: report(offset + done, total)


def _check_free_space(folder: Path, needed: int) -> None:
    """Fail early, with sizes, rather than with a full disk halfway through."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise ModelMissing(
            f"The LivePortrait weights need {_mb(needed)} of free space in {folder}, but only "
            f"{_mb(free)} are free. Free some space, or set {weights.DIR_ENV_VAR} to a folder "
            "on a disk with more room (set it for the app too)."
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def _locate_all(source: Path, needed: list[weights.WeightFile]) -> dict[weights.WeightFile, Path]:
    """Where each needed file is under ``source``; ModelMissing listing those not found."""
    found: dict[weights.WeightFile, Path] = {}
    missing: list[str] = []
    for weight in needed:
        path = next((p for p in _candidates(source, weight) if p.is_file()), None)
        if path is None:
            missing.append(weight.file_name)
        else:
            found[weight] = path
    if missing:
        raise ModelMissing(
            f"{source} does not contain {', '.join(missing)} (looked for "
            "liveportrait/base_models/NAME.pth, base_models/NAME.pth and NAME.pth, and "
            "retargeting_models/ for the stitching file). Nothing was copied. Point --from at "
            "the folder holding the files, or download the missing ones from "
            f"https://huggingface.co/{weights.HF_REPO}/tree/main/liveportrait."
        )
    return found


def _candidates(source: Path, weight: weights.WeightFile) -> list[Path]:
    in_repo = PurePosixPath(weight.hf_path)  # liveportrait/<kind>_models/<file>
    return [
        source / in_repo,
        source / "pretrained_weights" / in_repo,
        source / in_repo.relative_to(in_repo.parts[0]),
        source / weight.file_name,
    ]


def _mismatch(weight: weights.WeightFile, path: Path) -> str | None:
    """None if ``path`` is the expected file, else a sentence saying how it differs."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_LFS_POINTER))
        actual = sha256_of(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})."
    if actual == weight.sha256:
        return None
    if head == _LFS_POINTER:
        return (
            f"{path} is a Git LFS pointer, not {weight.file_name} itself: run `git lfs pull` "
            "in that clone first."
        )
    return (
        f"{path} is not the expected {weight.file_name}: its SHA-256 is {actual} "
        f"({path.stat().st_size} bytes), expected {weight.sha256} ({weight.size} bytes)."
    )


_LFS_POINTER = b"version https://git-lfs"


def _install_copy(source: Path, dest: Path) -> None:
    """Copy through ``<dest>.part`` so an interrupted copy never looks like a whole file."""
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, part)
        os.replace(part, dest)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise disk_error(dest, exc) from exc
    log.info("Copied %s to %s", source, dest)


def fetch_file(
    url: str,
    dest: Path,
    sha256: str,
    progress: Progress | None = None,
    *,
    size: int,
    attempts: int = 5,
    timeout: float = 30.0,
    alternative: str | None = None,
) -> Path:
    """``dest``, downloaded from ``url`` unless it is already there with the right SHA-256.

    Up to ``attempts`` requests are made; each continues where the last one stopped. Raises
    ModelMissing when the download keeps failing, the server offers or sends more than
    ``size`` bytes (the expected size: the transfer stops there and the part is deleted), the
    result has the wrong checksum (the bad file is deleted) or the file cannot be written
    (full disk, no permission). ``alternative`` tells the user what else to do when the server
    cannot be reached.
    """
    dest = Path(dest)
    if alternative is None:
        alternative = f"Or download the file yourself and save it as {dest}."
    try:
        return _fetch(url, dest, sha256, size, progress, attempts, timeout, alternative)
    except OSError as exc:  # network errors became _Retry: this one is about the local disk
        raise disk_error(dest, exc) from exc


def _fetch(
    url: str,
    dest: Path,
    sha256: str,
    size: int,
    progress: Progress | None,
    attempts: int,
    timeout: float,
    alternative: str,
) -> Path:
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.is_file() and part.stat().st_size > size:  # not a beginning of the expected file
        part.unlink()
    last_error = "no attempt was made"
    for attempt in range(1, attempts + 1):
        try:
            if _download_rest(url, part, size, progress, timeout, alternative):
                return _verified(part, dest, sha256, url)
            last_error = "the connection closed before the whole file arrived"
        except _Retry as exc:
            last_error = str(exc)
        log.info("Download of %s interrupted (attempt %d): %s", url, attempt, last_error)
    raise ModelMissing(
        f"Could not download {url} after {attempts} attempts ({last_error}). Check the "
        f"internet connection and try again; what arrived so far is kept in {part}. "
        f"{alternative}"
    )


def disk_error(path: Path, exc: OSError) -> ModelMissing:
    """The message for a file that cannot be written: what went wrong and what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = (
            "The disk is full: free some space and run the command again (a download "
            "continues where it stopped)."
        )
    else:
        advice = f"Check that {path.parent} can be created and written to."
    return ModelMissing(f"Could not save {path} ({exc.strerror or exc}). {advice}")


class _Retry(Exception):
    """A failure worth another request."""


def _download_rest(
    url: str, part: Path, size: int, progress: Progress | None, timeout: float, alternative: str
) -> bool:
    """Append the missing bytes of ``url`` to ``part``; True when the file is complete.

    Never writes more than ``size`` bytes into ``part``: a server that announces or sends
    more is cut off with ModelMissing and ``part`` is deleted. Only failures of the
    connection are retried; an OSError while writing ``part`` (full disk) propagates, since
    another request would not help.
    """
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
                f"The address may have changed; check for an avatar-app update. {alternative}"
            ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _Retry(f"could not connect: {exc}") from exc
    with response:
        start, total = _span(response, have)
        if total is not None and total > size:
            part.unlink(missing_ok=True)
            raise _too_big(url, f"offers {total} bytes, more than", size, alternative)
        with part.open("r+b" if start else "wb") as out:
            if start:
                out.seek(start)
                out.truncate()
            done = start
            for block in _blocks(response):
                if done + len(block) > size:
                    break
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            else:
                return total is None or done >= total
    part.unlink(missing_ok=True)
    raise _too_big(url, "sent more than", size, alternative)


def _too_big(url: str, what: str, size: int, alternative: str) -> ModelMissing:
    return ModelMissing(
        f"Stopped downloading {url}: the server {what} the {size} bytes the file should "
        "have, so it is not the expected file (nothing was kept). Try again later; if this "
        f"keeps happening, the file on the server has changed: check for an avatar-app "
        f"update. {alternative}"
    )


def _blocks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body in chunks; a broken connection becomes _Retry."""
    while True:
        try:
            block = response.read(CHUNK)
        except (http.client.HTTPException, OSError) as exc:
            raise _Retry(f"the transfer broke off: {exc}") from exc
        if not block:
            return
        yield block


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
