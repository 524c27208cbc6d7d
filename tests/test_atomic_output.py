"""Offline outputs: refused when they would destroy an input, written all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avatar_app.atomic_output import OutputFileError, atomic_output, check_output


def test_a_complete_file_appears_under_its_name_only_at_the_end(tmp_path: Path) -> None:
    final = tmp_path / "out.mp4"
    with atomic_output(final) as partial:
        partial.write_bytes(b"video")
        assert partial.parent == tmp_path and partial.name.startswith(".out.partial-")
        assert not final.exists()
    assert final.read_bytes() == b"video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_or_ctrl_c_leaves_nothing_and_keeps_the_old_file(
    tmp_path: Path, error: type[BaseException]
) -> None:
    final = tmp_path / "out.mp4"
    final.write_bytes(b"older")
    with pytest.raises(error), atomic_output(final) as partial:
        partial.write_bytes(b"half")
        raise error
    assert final.read_bytes() == b"older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_an_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"input")
    os.link(clip, tmp_path / "hard.mp4")
    (tmp_path / "soft.mp4").symlink_to(clip)
    for output in (clip, tmp_path / "hard.mp4", tmp_path / "soft.mp4", tmp_path / "." / "clip.mp4"):
        with pytest.raises(OutputFileError, match="also an input"):
            check_output(output, [None, clip])
    assert clip.read_bytes() == b"input"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("x.avi", "must end in .mp4"),
        ("x", "must end in .mp4"),
        ("y" * 300 + ".mp4", "too long"),
        ("nowhere/x.mp4", "does not exist"),
        ("folder.mp4", "is a folder"),
        ("pipe.mp4", "not a regular file"),
    ],
)
def test_outputs_that_would_fail_late_are_refused_early(
    tmp_path: Path, name: str, words: str
) -> None:
    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "pipe.mp4")
    with pytest.raises(OutputFileError, match=words):
        check_output(tmp_path / name)


def test_the_lookahead_range_starts_where_the_model_does() -> None:
    from avatar_app.cli import MIN_LOOKAHEAD_MS
    from engines.speech.features import HOP, RATE
    from engines.speech.model import LipSyncModel

    minimum = (LipSyncModel().lookahead_seconds + HOP / RATE) * 1000
    assert pytest.approx(minimum) == MIN_LOOKAHEAD_MS
