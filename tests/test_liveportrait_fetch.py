"""``avatar-app models fetch liveportrait``: download or import, verify, resume, explain.

The real files total 522 MB and Hugging Face is out of reach in tests, so the table of files
is replaced by small fake payloads with their true SHA-256, served by a real HTTP server on
127.0.0.1 in the layout of the Hugging Face repository.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from avatar_app import cli
from avatar_app.model_fetch import fetch_liveportrait, import_liveportrait
from engines.errors import ModelMissing
from engines.liveportrait import weights
from engines.liveportrait.weights import WeightFile, find_weights, weights_dir
from tests.http_site import Site, closed_port, serve


class Fake(NamedTuple):
    weight: WeightFile
    payload: bytes


def _payload(name: str, size: int) -> bytes:
    return hashlib.shake_256(name.encode()).digest(size)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Fake]:
    """The real file table with small payloads; the user cache moved under tmp_path."""
    made = []
    for i, real in enumerate(weights.FILES):
        payload = _payload(real.name, 40_000 + 30_000 * i)
        fake = WeightFile(
            real.name, real.hf_path, len(payload), hashlib.sha256(payload).hexdigest()
        )
        made.append(Fake(fake, payload))
    monkeypatch.setattr(weights, "FILES", tuple(f.weight for f in made))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.DIR_ENV_VAR, raising=False)
    monkeypatch.delenv(weights.URL_ENV_VAR, raising=False)
    return made


@pytest.fixture
def hf(fakes: list[Fake], tmp_path: Path) -> Iterator[Site]:
    """A server laid out like huggingface.co/KwaiVGI/LivePortrait/resolve/main."""
    root = tmp_path / "hf"
    _lay_out(root, fakes, lambda w: w.hf_path)
    with serve(root) as site:
        yield site


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """cli.main() replaces the root logging handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lay_out(root: Path, fakes: list[Fake], where: Callable[[WeightFile], str]) -> None:
    """Write the fake payloads under ``root``, each at ``where(weight)``."""
    for fake in fakes:
        path = root / where(fake.weight)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fake.payload)


def _assert_installed(fakes: list[Fake], paths: dict[str, Path]) -> None:
    assert paths == find_weights()
    assert set(paths) == {f.weight.name for f in fakes}
    for fake in fakes:
        assert paths[fake.weight.name] == weights_dir() / fake.weight.file_name
        assert paths[fake.weight.name].read_bytes() == fake.payload
    assert not list(weights_dir().glob("*.part"))


def _url_path(weight: WeightFile) -> str:
    return f"/{weight.hf_path}"


# --- the real table -----------------------------------------------------------------------


def test_the_table_names_the_official_human_model_files() -> None:
    base = "https://huggingface.co/KwaiVGI/LivePortrait/resolve/main/liveportrait/"
    assert [w.url for w in weights.FILES] == [
        base + "base_models/appearance_feature_extractor.pth",
        base + "base_models/motion_extractor.pth",
        base + "base_models/warping_module.pth",
        base + "base_models/spade_generator.pth",
        base + "retargeting_models/stitching_retargeting_module.pth",
    ]
    for weight in weights.FILES:
        assert re.fullmatch(r"[0-9a-f]{64}", weight.sha256), weight
        assert weight.file_name == weight.name + ".pth"
    assert weights.total_size() == 522_320_239


def test_weights_dir_is_in_the_user_cache_unless_overridden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.DIR_ENV_VAR, raising=False)
    assert weights_dir() == tmp_path / "cache" / "avatar-app" / "models" / "liveportrait"
    monkeypatch.setenv(weights.DIR_ENV_VAR, str(tmp_path / "mine"))
    assert weights_dir() == tmp_path / "mine"


def test_missing_weights_name_the_command_to_run(fakes: list[Fake]) -> None:
    with pytest.raises(ModelMissing) as info:
        find_weights()
    message = str(info.value)
    assert "`avatar-app models fetch liveportrait`" in message
    assert "--from FOLDER" in message
    assert all(f"{f.weight.file_name} is missing" in message for f in fakes)


def test_a_truncated_file_is_reported_as_damaged(fakes: list[Fake], tmp_path: Path) -> None:
    _lay_out(weights_dir(), fakes, lambda w: w.file_name)
    bad = fakes[2].weight
    (weights_dir() / bad.file_name).write_bytes(fakes[2].payload[:1000])
    with pytest.raises(ModelMissing, match=f"{bad.file_name} is damaged .1000 bytes"):
        find_weights()


# --- download -------------------------------------------------------------------------------


def test_download_all_files_with_one_progress_total(fakes: list[Fake], hf: Site) -> None:
    seen: list[tuple[int, int | None]] = []
    paths = fetch_liveportrait(lambda done, total: seen.append((done, total)), base_url=hf.base_url)
    _assert_installed(fakes, paths)
    assert hf.paths == [_url_path(f.weight) for f in fakes]
    total = sum(len(f.payload) for f in fakes)
    assert {t for _, t in seen} == {total}
    assert seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_second_fetch_downloads_nothing(fakes: list[Fake], hf: Site) -> None:
    fetch_liveportrait(base_url=hf.base_url)
    fetch_liveportrait(base_url=hf.base_url)
    assert len(hf.paths) == len(fakes)


def test_a_damaged_local_file_is_downloaded_again(fakes: list[Fake], hf: Site) -> None:
    fetch_liveportrait(base_url=hf.base_url)
    damaged = weights_dir() / fakes[1].weight.file_name
    damaged.write_bytes(b"x" * len(fakes[1].payload))
    fetch_liveportrait(base_url=hf.base_url)
    assert hf.paths[len(fakes) :] == [_url_path(fakes[1].weight)]
    assert damaged.read_bytes() == fakes[1].payload


def test_a_corrupted_download_is_deleted_and_named(fakes: list[Fake], hf: Site) -> None:
    bad = fakes[2].weight
    served = hf.root / bad.hf_path
    corrupted = bytearray(served.read_bytes())
    corrupted[5000] ^= 0xFF
    served.write_bytes(bytes(corrupted))
    with pytest.raises(ModelMissing, match="not the expected one") as info:
        fetch_liveportrait(base_url=hf.base_url)
    message = str(info.value)
    assert bad.file_name in message and bad.sha256 in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert not (weights_dir() / bad.file_name).exists()
    assert not (weights_dir() / (bad.file_name + ".part")).exists()
    with pytest.raises(ModelMissing, match=f"{bad.file_name} is missing"):
        find_weights()


def test_an_interrupted_download_resumes_with_a_range_request(fakes: list[Fake], hf: Site) -> None:
    cut = fakes[3].weight
    hf.cut_path = _url_path(cut)
    hf.cut_first_response_at = 30_000
    paths = fetch_liveportrait(base_url=hf.base_url)
    _assert_installed(fakes, paths)
    asked = [r for p, r in zip(hf.paths, hf.ranges, strict=True) if p == _url_path(cut)]
    assert asked == [None, "bytes=30000-"]


def test_a_part_left_by_an_earlier_run_is_continued(fakes: list[Fake], hf: Site) -> None:
    first = fakes[0]
    weights_dir().mkdir(parents=True)
    (weights_dir() / (first.weight.file_name + ".part")).write_bytes(first.payload[:12_345])
    _assert_installed(fakes, fetch_liveportrait(base_url=hf.base_url))
    assert hf.ranges[0] == "bytes=12345-"


def test_the_base_url_and_folder_can_come_from_the_environment(
    fakes: list[Fake], hf: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(weights.URL_ENV_VAR, hf.base_url)
    monkeypatch.setenv(weights.DIR_ENV_VAR, str(tmp_path / "elsewhere"))
    paths = fetch_liveportrait()
    assert all(p.parent == tmp_path / "elsewhere" for p in paths.values())
    _assert_installed(fakes, paths)


def test_no_network_suggests_the_offline_route(fakes: list[Fake]) -> None:
    with pytest.raises(ModelMissing, match="after 5 attempts") as info:
        fetch_liveportrait(base_url=f"http://127.0.0.1:{closed_port()}")
    assert "internet connection" in str(info.value)
    assert "avatar-app models fetch liveportrait --from FOLDER" in str(info.value)


def test_too_little_disk_space_fails_before_downloading(
    fakes: list[Fake], hf: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nearly_full(path: object) -> shutil._ntuple_diskusage:
        return shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000)

    monkeypatch.setattr("shutil.disk_usage", nearly_full)
    with pytest.raises(ModelMissing, match="only 0 MB are free") as info:
        fetch_liveportrait(base_url=hf.base_url)
    assert weights.DIR_ENV_VAR in str(info.value)
    assert hf.paths == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_while_writing_is_explained(fakes: list[Fake], hf: Site) -> None:
    first = fakes[0].weight
    weights_dir().mkdir(parents=True)
    (weights_dir() / (first.file_name + ".part")).symlink_to("/dev/full")  # writes: ENOSPC
    with pytest.raises(ModelMissing, match="The disk is full") as info:
        fetch_liveportrait(base_url=hf.base_url)
    assert first.file_name in str(info.value)
    assert len(hf.paths) == 1  # a full disk is not retried


# --- import from a folder -----------------------------------------------------------------

LAYOUTS: dict[str, Callable[[WeightFile], str]] = {
    "hugging-face": lambda w: w.hf_path,
    "checkout": lambda w: f"pretrained_weights/{w.hf_path}",
    "liveportrait-folder": lambda w: w.hf_path.removeprefix("liveportrait/"),
    "flat": lambda w: w.file_name,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_accepts_each_layout(fakes: list[Fake], tmp_path: Path, layout: str) -> None:
    source = tmp_path / "have"
    _lay_out(source, fakes, LAYOUTS[layout])
    _assert_installed(fakes, import_liveportrait(source))
    assert all(p.is_file() for p in source.rglob("*.pth"))  # copied, not moved


def test_import_refuses_a_wrong_file_and_copies_nothing(fakes: list[Fake], tmp_path: Path) -> None:
    source = tmp_path / "have"
    _lay_out(source, fakes, LAYOUTS["hugging-face"])
    bad = fakes[3].weight
    wrong = source / bad.hf_path
    wrong.write_bytes(b"an fp16 conversion, say")
    with pytest.raises(ModelMissing) as info:
        import_liveportrait(source)
    message = str(info.value)
    assert str(wrong) in message and bad.file_name in message
    assert f"expected {bad.sha256}" in message
    assert hashlib.sha256(b"an fp16 conversion, say").hexdigest() in message
    assert "Nothing was copied" in message and "huggingface.co" in message
    assert not weights_dir().exists() or not any(weights_dir().iterdir())


def test_import_names_the_missing_files(fakes: list[Fake], tmp_path: Path) -> None:
    source = tmp_path / "have"
    _lay_out(source, fakes[:-1], LAYOUTS["flat"])
    with pytest.raises(ModelMissing, match=f"does not contain {fakes[-1].weight.file_name}"):
        import_liveportrait(source)
    assert not weights_dir().exists()


def test_import_recognises_a_clone_without_git_lfs(fakes: list[Fake], tmp_path: Path) -> None:
    source = tmp_path / "have"
    _lay_out(source, fakes, LAYOUTS["hugging-face"])
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{fakes[0].weight.sha256}\n"
    (source / fakes[0].weight.hf_path).write_text(pointer + f"size {fakes[0].weight.size}\n")
    with pytest.raises(ModelMissing, match=r"Git LFS pointer.*git lfs pull"):
        import_liveportrait(source)


def test_import_of_a_missing_folder(fakes: list[Fake], tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="is not a folder"):
        import_liveportrait(tmp_path / "nowhere")


def test_import_keeps_files_already_installed(fakes: list[Fake], tmp_path: Path) -> None:
    _lay_out(weights_dir(), fakes, LAYOUTS["flat"])
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_installed(fakes, import_liveportrait(empty))


# --- the command line -----------------------------------------------------------------------


@pytest.mark.usefixtures("keep_logging")
def test_cli_downloads_with_a_progress_bar(
    fakes: list[Fake],
    hf: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(weights.URL_ENV_VAR, hf.base_url)
    assert cli.main(["models", "fetch", "liveportrait"]) == 0
    err = capsys.readouterr().err
    assert "Downloading LivePortrait: 100%" in err
    assert f"LivePortrait weights ready in {weights_dir()}" in err
    _assert_installed(fakes, find_weights())


@pytest.mark.usefixtures("keep_logging")
def test_cli_imports_from_a_folder(
    fakes: list[Fake], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "LivePortrait"
    _lay_out(source, fakes, LAYOUTS["checkout"])
    assert cli.main(["models", "fetch", "liveportrait", "--from", str(source)]) == 0
    assert "weights ready" in capsys.readouterr().err
    _assert_installed(fakes, find_weights())


@pytest.mark.usefixtures("keep_logging")
def test_cli_wrong_file_is_an_error_not_a_traceback(
    fakes: list[Fake], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "have"
    _lay_out(source, fakes, LAYOUTS["flat"])
    (source / fakes[0].weight.file_name).write_bytes(b"nope")
    code = cli.main(["models", "fetch", "liveportrait", "--from", str(source)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USER_ERROR
    assert "\nerror: Nothing was copied" in err
    assert fakes[0].weight.sha256 in err and "Traceback" not in err


@pytest.mark.usefixtures("keep_logging")
def test_cli_without_network_is_an_error(
    fakes: list[Fake], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(weights.URL_ENV_VAR, f"http://127.0.0.1:{closed_port()}")
    assert cli.main(["models", "fetch", "liveportrait"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "error: Could not download" in err and "--from FOLDER" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.usefixtures("keep_logging")
def test_cli_full_disk_is_an_error(
    fakes: list[Fake], hf: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(weights.URL_ENV_VAR, hf.base_url)
    weights_dir().mkdir(parents=True)
    (weights_dir() / (fakes[0].weight.file_name + ".part")).symlink_to("/dev/full")
    assert cli.main(["models", "fetch", "liveportrait"]) == cli.EXIT_USER_ERROR
    assert "error: Could not save" in capsys.readouterr().err


@pytest.mark.usefixtures("keep_logging")
def test_cli_from_is_only_for_liveportrait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "fetch", "face-landmarker", "--from", str(tmp_path)]) == 2
    assert "error: --from works only with liveportrait" in capsys.readouterr().err
