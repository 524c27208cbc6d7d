"""Every module of the app imports on Windows, macOS and Linux.

Each OS gets a fresh interpreter in which ``sys.platform``, ``os.name`` and
``platform.system()`` claim that OS before any of our modules is imported; faking Windows,
the POSIX-only standard modules cannot be imported at all, so a module-level
``import resource`` (or ``fcntl``, ...) anywhere fails the Windows case.

What a faked platform cannot fairly judge is imported for real beforehand: every module our
modules import at module level (third-party packages and the standard library pick their own
platform code when imported, and would break on Linux for reasons real Windows never sees).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("avatar_app", "engines", "ui")
EXCLUDED = ("engines.speech.training",)
"""Linux-only tooling: the training pipeline (espeak-ng's C library, Debian game data,
pocketsphinx) that builds the shipped model and never runs on a user's machine."""
POSIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")
OPTIONAL = ("torch", "tensorrt", "onnx")
"""Heavy optional extras: a module that needs a missing one is skipped, not failed."""
PLATFORMS = {"win32": ("nt", "Windows"), "darwin": ("posix", "Darwin"), "linux": ("posix", "Linux")}

# Runs in the fresh interpreter, given one JSON argument: see test_every_module_imports_on.
CHILD = r"""
import importlib, json, os, pathlib, platform, sys, traceback, types

job = json.loads(sys.argv[1])
posix_only = set(job["posix_only"])
for name in job["preload"]:
    if name.split(".")[0] not in posix_only:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional extra or another OS's module: importing ours will tell

# pathlib picks WindowsPath from os.name on every Path() and refuses to make one on Linux;
# real Windows has a working WindowsPath, so pathlib keeps the real os.name.
real_os = types.ModuleType("os")
real_os.__dict__.update(vars(os))
pathlib.os = real_os
sys.platform = job["platform"]
os.name = job["os_name"]
platform.system = lambda: job["system"]


class NotOnThisPlatform:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in posix_only:
            raise ModuleNotFoundError(f"No module named {name!r} on {job['system']}", name=name)
        return None


sys.meta_path.insert(0, NotOnThisPlatform())
for name in posix_only:
    sys.modules.pop(name, None)  # preloaded by a dependency: ours must not find it

failed, skipped = {}, {}
for module in job["modules"]:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in job["optional"]:
            skipped[module] = str(exc)
        else:
            failed[module] = traceback.format_exc()
    except Exception:
        failed[module] = traceback.format_exc()
print(json.dumps({"failed": failed, "skipped": skipped}))
"""


def _our_modules() -> list[str]:
    modules = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            if not name.startswith(EXCLUDED) and parts[-1] != "__main__":
                modules.append(name)
    return modules


def _module_level_imports(path: Path) -> set[str]:
    """Absolute module names imported when ``path`` is imported (not inside functions)."""
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _preload(modules: list[str]) -> list[str]:
    """What our modules import at module level from outside our packages."""
    names: set[str] = set()
    for module in modules:
        path = REPO / Path(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        names |= _module_level_imports(path)
    ours = (*PACKAGES, "__future__")
    return sorted(name for name in names if name.split(".")[0] not in ours)


@pytest.fixture(scope="module")
def modules() -> list[str]:
    found = _our_modules()
    assert {"avatar_app.cli", "engines.face.landmarker", "ui.player"} <= set(found)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("fake", list(PLATFORMS))
def test_every_module_imports_on(fake: str, modules: list[str]) -> None:
    os_name, system = PLATFORMS[fake]
    job = {
        "platform": fake,
        "os_name": os_name,
        "system": system,
        "posix_only": POSIX_ONLY if fake == "win32" else (),
        "optional": OPTIONAL,
        "modules": modules,
        "preload": _preload(modules),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    failures = "\n".join(f"{name}:\n{trace}" for name, trace in result["failed"].items())
    assert not result["failed"], f"modules that do not import on {fake}:\n{failures}"
    assert len(result["skipped"]) < len(modules) // 2, result["skipped"]
