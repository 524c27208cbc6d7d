"""The official LivePortrait weights (human model): what they are and where they live.

The five PyTorch files come from the Hugging Face repository KwaiVGI/LivePortrait. They are
too big to bundle (about 522 MB), so ``avatar-app models fetch liveportrait`` downloads them,
or copies them from a folder the user already has, into ``weights_dir()``, flat, each checked
against its SHA-256. No torch import here: the CLI and the UI use this module to say what is
missing without loading the engine.

The SHA-256 and size of each file are the Git LFS object ids of the files on Hugging Face:
read from the LFS pointer files in the public GitHub mirror ``camenduru/LivePortrait-hf``
(commit 866a537a9ebe00ca72239451a58bd2e842e3e236, ``pretrained_weights/liveportrait/...``),
and the same values are pinned by several independent projects that download these files
from huggingface.co.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engines.errors import ModelMissing
from engines.model_cache import check_sha256, user_model_dir

HF_REPO = "KwaiVGI/LivePortrait"
HF_BASE_URL = f"https://huggingface.co/{HF_REPO}/resolve/main"
DIR_ENV_VAR = "AVATAR_LIVEPORTRAIT_DIR"
"""Overrides ``weights_dir()``: where the weights are looked for and installed."""
URL_ENV_VAR = "AVATAR_LIVEPORTRAIT_URL"
"""Overrides ``HF_BASE_URL``, e.g. for a mirror: files are fetched from ``<base>/<hf_path>``."""
FETCH_COMMAND = "avatar-app models fetch liveportrait"


@dataclass(frozen=True)
class WeightFile:
    """One file of the official release, as published on Hugging Face."""

    name: str  # key in find_weights(); the file name without ".pth"
    hf_path: str  # path inside the Hugging Face repository
    size: int  # bytes
    sha256: str

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.hf_path).name

    @property
    def url(self) -> str:
        return self.url_from(HF_BASE_URL)

    def url_from(self, base_url: str) -> str:
        """Where the file is under ``base_url`` (a copy of the repository's layout)."""
        return f"{base_url.rstrip('/')}/{self.hf_path}"


# Hashes and sizes: LFS pointers in github.com/camenduru/LivePortrait-hf at 866a537 (see the
# module docstring); identical values in other projects that download from huggingface.co.
APPEARANCE_FEATURE_EXTRACTOR = WeightFile(
    "appearance_feature_extractor",
    "liveportrait/base_models/appearance_feature_extractor.pth",
    3_387_959,
    "5279bb8654293dbdf327030b397f107237dd9212fb11dd75b83dfb635211ceb5",
)
MOTION_EXTRACTOR = WeightFile(
    "motion_extractor",
    "liveportrait/base_models/motion_extractor.pth",
    112_545_506,
    "251e6a94ad667a1d0c69526d292677165110ef7f0cf0f6d199f0e414e8aa0ca5",
)
WARPING_MODULE = WeightFile(
    "warping_module",
    "liveportrait/base_models/warping_module.pth",
    182_180_086,
    "2f61a6f265fe344f14132364859a78bdbbc2068577170693da57fb96d636e282",
)
SPADE_GENERATOR = WeightFile(
    "spade_generator",
    "liveportrait/base_models/spade_generator.pth",
    221_813_590,
    "4780afc7909a9f84e24c01d73b31a555ef651521a1fe3b2429bd04534d992aee",
)
STITCHING_RETARGETING = WeightFile(
    "stitching_retargeting_module",
    "liveportrait/retargeting_models/stitching_retargeting_module.pth",
    2_393_098,
    "3652d5a3f95099141a56986aaddec92fadf0a73c87a20fac9a2c07c32b28b611",
)

FILES: tuple[WeightFile, ...] = (
    APPEARANCE_FEATURE_EXTRACTOR,
    MOTION_EXTRACTOR,
    WARPING_MODULE,
    SPADE_GENERATOR,
    STITCHING_RETARGETING,
)


def weights_dir() -> Path:
    """Folder holding the five files side by side (``$AVATAR_LIVEPORTRAIT_DIR`` if set)."""
    override = os.environ.get(DIR_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return user_model_dir() / "liveportrait"


def total_size(files: tuple[WeightFile, ...] = FILES) -> int:
    return sum(f.size for f in files)


def find_weights() -> dict[str, Path]:
    """``{file.name: path}`` for all five files; ModelMissing saying what to run if not.

    Only presence and size are checked, so the CLI, the doctor and the UI can say what is
    missing at once; :func:`verified_weights` also checks each SHA-256, before loading.
    """
    folder = weights_dir()
    found: dict[str, Path] = {}
    problems: list[str] = []
    for weight in FILES:
        path = folder / weight.file_name
        if not path.is_file():
            problems.append(f"{weight.file_name} is missing")
        elif (size := path.stat().st_size) != weight.size:
            problems.append(f"{weight.file_name} is damaged ({size} bytes, expected {weight.size})")
        else:
            found[weight.name] = path
    if problems:
        raise ModelMissing(
            f"The LivePortrait weights in {folder} are incomplete: {'; '.join(problems)}. "
            f"Run `{FETCH_COMMAND}` to download them (about {total_size() // 1_000_000} MB), "
            f"or `{FETCH_COMMAND} --from FOLDER` if you already have the files from {HF_REPO}."
        )
    return found


def verified_weights() -> dict[str, Path]:
    """:func:`find_weights`, each file also checked against its published SHA-256.

    ModelMissing, saying to fetch again, for a file that was damaged or replaced since it
    was downloaded.
    """
    found = find_weights()
    for weight in FILES:
        check_sha256(
            found[weight.name],
            weight.sha256,
            f"Run `{FETCH_COMMAND}` again to download it afresh (or delete the file).",
        )
    return found
