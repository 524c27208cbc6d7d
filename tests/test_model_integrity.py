"""Every model file is checked against the SHA-256 its manifest records before it is loaded.

The verification of a big file is remembered in a ``.verified`` sidecar until the file changes;
a changed or damaged file is refused with a message that says what to do. (Downloads, capped at
the expected size and verified before the rename, are tested in test_model_fetch.py.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from engines import model_cache
from engines.errors import ModelMissing
from engines.liveportrait import weights
from engines.liveportrait.backend import MANIFEST, RENDER_NETWORKS, checked_onnx_path
from engines.model_cache import SIDECAR_SUFFIX, check_sha256, known_sha256
from engines.speech import model as lipsync

PAYLOAD = bytes(range(256)) * 400
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file hashed from now on (the in-process cache is bypassed), and sidecars for
    files of 1 KB or more."""
    hashed: list[Path] = []

    def counting(path: Path) -> str:
        hashed.append(path)
        return model_cache.sha256_of(path)

    monkeypatch.setattr(model_cache, "cached_sha256", counting)
    monkeypatch.setattr(model_cache, "SIDECAR_MIN_BYTES", 1024)
    return hashed


def _flip_byte_keeping_size_and_mtime(path: Path, at: int = 100) -> None:
    time.sleep(0.05)  # file times advance with the kernel's clock tick (up to 10 ms)
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# --- The check and its sidecar ------------------------------------------------------------


def test_a_big_file_is_hashed_once_then_trusted_while_unchanged(
    tmp_path: Path, hashes: list[Path]
) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(PAYLOAD)
    assert check_sha256(path, PAYLOAD_SHA, "fix") == path
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    assert json.loads(sidecar.read_text())["sha256"] == PAYLOAD_SHA
    assert check_sha256(path, PAYLOAD_SHA, "fix") == path
    assert hashes == [path]  # the second check read the sidecar


def test_a_file_changed_behind_the_sidecar_is_hashed_again_and_refused(
    tmp_path: Path, hashes: list[Path]
) -> None:
    """Same size, same mtime (as ``touch -r`` or a careless copy would leave): the ctime still
    changes, so the file is hashed again and the damage is seen."""
    path = tmp_path / "net.onnx"
    path.write_bytes(PAYLOAD)
    known_sha256(path)
    _flip_byte_keeping_size_and_mtime(path)
    fix = "Run `avatar-app models fetch` again (or delete the file)."
    with pytest.raises(ModelMissing) as info:
        check_sha256(path, PAYLOAD_SHA, fix)
    message = str(info.value)
    assert str(path) in message and PAYLOAD_SHA in message and message.endswith(fix)
    assert len(hashes) == 2


def test_a_forged_sidecar_does_not_vouch_for_another_file(
    tmp_path: Path, hashes: list[Path]
) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(PAYLOAD)
    known_sha256(path)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    copy = tmp_path / "other.onnx"
    copy.write_bytes(b"\0" * len(PAYLOAD))
    shutil.copy(sidecar, copy.with_name(copy.name + SIDECAR_SUFFIX))  # another inode and ctime
    with pytest.raises(ModelMissing):
        check_sha256(copy, PAYLOAD_SHA, "fix")


def test_a_read_only_folder_only_costs_a_hash_each_time(
    tmp_path: Path, hashes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(PAYLOAD)

    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    assert check_sha256(path, PAYLOAD_SHA, "fix") == path
    assert check_sha256(path, PAYLOAD_SHA, "fix") == path
    assert len(hashes) == 2


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"cannot be read.*Run this"):
        check_sha256(tmp_path / "gone.onnx", PAYLOAD_SHA, "Run this.")


# --- LivePortrait: exported ONNX files, against the export's manifest ---------------------


def _fake_export(folder: Path) -> Path:
    """ONNX-named files and a manifest like the export writes (the check reads only those)."""
    folder.mkdir(parents=True, exist_ok=True)
    networks = {}
    for network in RENDER_NETWORKS:
        data = network.encode() * 300
        (folder / f"{network}.onnx").write_bytes(data)
        networks[network] = {
            "file": f"{network}.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    (folder / MANIFEST).write_text(json.dumps({"networks": networks}))
    return folder


def test_exported_networks_that_match_the_manifest_are_accepted(tmp_path: Path) -> None:
    folder = _fake_export(tmp_path / "onnx")
    for network in RENDER_NETWORKS:
        assert checked_onnx_path(folder, network) == folder / f"{network}.onnx"


def test_a_changed_onnx_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    folder = _fake_export(tmp_path / "onnx")
    _flip_byte_keeping_size_and_mtime(folder / "generator.onnx")
    with pytest.raises(ModelMissing, match=r"generator\.onnx is damaged") as info:
        checked_onnx_path(folder, "generator")
    assert "avatar-app engines export liveportrait" in str(info.value)


def test_a_network_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    folder = _fake_export(tmp_path / "onnx")
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["networks"]["eye"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelMissing, match="does not list the eye network"):
        checked_onnx_path(folder, "eye")
    (folder / MANIFEST).unlink()
    with pytest.raises(ModelMissing, match="export liveportrait"):
        checked_onnx_path(folder, "generator")


def test_the_renderer_refuses_a_damaged_export(
    tiny_liveportrait_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real ONNX Runtime back end, as ``--engine liveportrait`` loads it."""
    from engines.errors import EngineUnavailable
    from engines.liveportrait.renderer import ONNX_ENV_VAR, create_onnxruntime

    folder = tmp_path / "onnx"
    shutil.copytree(tiny_liveportrait_onnx, folder)
    monkeypatch.setenv(ONNX_ENV_VAR, str(folder))
    create_onnxruntime()  # the export as written loads
    _flip_byte_keeping_size_and_mtime(folder / "warping.onnx", at=-10)
    with pytest.raises(EngineUnavailable, match=r"warping\.onnx is damaged.*export liveportrait"):
        create_onnxruntime()


# --- LivePortrait: the official weights, before the export loads them ---------------------


def test_weights_are_checked_against_their_published_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    for real in weights.FILES:
        payload = real.name.encode() * 100
        made.append(weights.WeightFile(real.name, real.hf_path, len(payload), "0" * 64))
        (tmp_path / made[-1].file_name).write_bytes(payload)
    monkeypatch.setattr(weights, "FILES", tuple(made))
    monkeypatch.setenv(weights.DIR_ENV_VAR, str(tmp_path))
    assert set(weights.find_weights()) == {w.name for w in made}  # right sizes: found
    with pytest.raises(ModelMissing, match=r"models fetch liveportrait` again"):
        weights.verified_weights()
    good = [
        weights.WeightFile(
            w.name,
            w.hf_path,
            w.size,
            hashlib.sha256((tmp_path / w.file_name).read_bytes()).hexdigest(),
        )
        for w in made
    ]
    monkeypatch.setattr(weights, "FILES", tuple(good))
    assert weights.verified_weights() == weights.find_weights()


# --- The lip-sync model -------------------------------------------------------------------


def test_the_shipped_lipsync_model_has_the_pinned_sha256() -> None:
    lipsync.check_model_digest(lipsync.shipped_model_path())
    assert model_cache.sha256_of(lipsync.shipped_model_path()) == lipsync.SHIPPED_SHA256


def test_a_damaged_shipped_lipsync_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = tmp_path / "resources"
    (resources / "models").mkdir(parents=True)
    copy = resources / "models" / "lipsync.onnx"
    copy.write_bytes(lipsync.shipped_model_path().read_bytes())
    _flip_byte_keeping_size_and_mtime(copy, at=-5)
    monkeypatch.setenv("AVATAR_APP_RESOURCES", str(resources))
    monkeypatch.delenv(lipsync.MODEL_ENV, raising=False)
    with pytest.raises(ModelMissing, match="Reinstall avatar-app"):
        lipsync.LipSyncModel()


def _override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, card: dict[str, object]) -> Path:
    path = tmp_path / "retrained.onnx"
    path.write_bytes(lipsync.shipped_model_path().read_bytes())
    if card:
        path.with_suffix(".json").write_text(json.dumps(card))
    monkeypatch.setenv(lipsync.MODEL_ENV, str(path))
    return path


def test_an_override_matching_its_training_record_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _override(tmp_path, monkeypatch, {"sha256": lipsync.SHIPPED_SHA256})
    with caplog.at_level(logging.WARNING):
        assert lipsync.LipSyncModel().path == path
    assert caplog.records == []


def test_an_override_that_changed_after_training_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _override(tmp_path, monkeypatch, {"sha256": "0" * 64, "onnx_max_abs_diff": 0.0})
    with pytest.raises(ModelMissing, match=rf"train it again, or unset {lipsync.MODEL_ENV}"):
        lipsync.LipSyncModel()


def test_an_override_without_a_record_loads_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _override(tmp_path, monkeypatch, {})
    with caplog.at_level(logging.WARNING, logger=lipsync.__name__):
        assert lipsync.LipSyncModel().path == path
    (record,) = caplog.records
    message = record.getMessage()
    assert str(path) in message and lipsync.SHIPPED_SHA256 in message
    assert f"Unset {lipsync.MODEL_ENV}" in message
